import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every entry point refuses an old Node with one line that names both versions, before anything
// that crashes on it (undici fails to load on Node 20 with a TypeError naming no version).

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The distribution's node; the tests themselves run on a newer one. */
const OLD_NODE = '/usr/bin/node';

function oldNodeVersion(): string | null {
  if (!existsSync(OLD_NODE)) return null;
  const version = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const [major, minor] = version.slice(1).split('.').map(Number) as [number, number];
  return major < 22 || (major === 22 && minor < 12) ? version : null;
}
const oldVersion = oldNodeVersion();

function run(command: string, args: string[], cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The old node first on PATH, as on a machine where it is the only one: `npm start` finds it there.
  const child = spawn(command, args, { cwd, env: { PATH: `/usr/bin:/bin:${ROOT}node_modules/.bin`, HOME: process.env.HOME ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const GUARD = ['--import', './src/require-node.mjs'];
/** Each entry point as its npm script runs it (package.json), on the old node. */
const ENTRY_POINTS: [string, string, string[]][] = [
  ['npm start', OLD_NODE, [...GUARD, 'src/server.ts']],
  ['npm run worker', OLD_NODE, [...GUARD, 'src/worker.ts']],
  ['npm run apikey:create', OLD_NODE, [...GUARD, 'src/admin/apikey.ts', 'create', '--name', 'old-node']],
  ['npm run apikey:list', OLD_NODE, [...GUARD, 'src/admin/apikey.ts', 'list']],
  ['npm run db:migrate', OLD_NODE, [...GUARD, 'src/admin/migrate.ts']],
  ['the extendql CLI', OLD_NODE, ['bin/extendql.mjs', '--help']],
];

describe.skipIf(!oldVersion)(`on an older Node (${oldVersion ?? `none at ${OLD_NODE}`})`, () => {
  it.each(ENTRY_POINTS)('%s exits non-zero with one line naming both versions and no stack', async (_name, command, args) => {
    const result = await run(command, args);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`Node.js ${oldVersion}`);
    expect(lines[0]).toContain('>= 22.18');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('`npm start` itself shows the line (npm adds nothing that hides it)', async () => {
    const result = await run('npm', ['start']);
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`Node.js ${oldVersion}`);
    expect(result.stderr).not.toContain('TypeError');
  });

  // A copy of the manifest, lockfile and .npmrc: the checkout's own node_modules stays untouched,
  // and --offline keeps a failed refusal from downloading anything.
  it('`npm install` refuses with npm\'s own engine error and installs nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'extendql-old-node-'));
    try {
      for (const file of ['package.json', 'package-lock.json', '.npmrc']) await copyFile(join(ROOT, file), join(dir, file));
      const result = await run('npm', ['install', '--offline', '--ignore-scripts'], dir);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('EBADENGINE');
      expect(result.stderr).toContain('"node":">=22.18"');
      expect(await readdir(dir)).not.toContain('node_modules');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('entry points', () => {
  it('every npm script that runs extendql loads the Node version guard before its TypeScript entry file', async () => {
    const { scripts } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    for (const name of ['start', 'worker', 'apikey:create', 'apikey:revoke', 'apikey:list', 'db:migrate']) {
      expect(scripts[name], name).toMatch(/^node --import \.\/src\/require-node\.mjs src\/\S+\.ts\b/);
    }
    // Plain node on the sources: no TypeScript loader at run time.
    expect(Object.values(scripts).join('\n')).not.toMatch(/\btsx\b/);
  });
});
