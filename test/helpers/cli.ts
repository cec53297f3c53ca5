import { spawn, type ChildProcess } from 'node:child_process';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: `npx extendql` resolves the root package's own bin from here. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'extendql.mjs');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to (or, undefined, removed from) this environment less its EXTENDQL_* variables. */
  env?: Record<string, string | undefined>;
  /** `npx extendql …` from the checkout, `node bin/extendql.mjs …`, or under a pseudo-terminal (`script`). */
  via?: 'npx' | 'node' | 'tty';
  cwd: string;
  /** Called once, with the child and its output so far, when stdout first matches `pattern` (e.g. to press Ctrl-C). */
  when?: { pattern: RegExp; then(child: ChildProcess, stdout: string): void };
}

/**
 * Runs the real CLI in a child process. The node running the tests comes first on PATH, so that
 * npx and the launcher run on it.
 */
export function runCli(args: string[], options: CliOptions): Promise<Run> {
  const env: NodeJS.ProcessEnv = { PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('EXTENDQL_') && name !== 'PATH') env[name] = value;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const via = options.via ?? 'node';
  const [command, argv] =
    via === 'npx'
      ? ['npx', ['extendql', ...args]]
      : via === 'node'
        ? [process.execPath, [BIN, ...args]]
        : ['script', ['-qec', [process.execPath, BIN, ...args].map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' '), '/dev/null']];
  const child = spawn(command, argv, { cwd: via === 'npx' ? ROOT : options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let when = options.when;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (when?.pattern.test(stdout)) {
      const { then } = when;
      when = undefined;
      then(child, stdout);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
