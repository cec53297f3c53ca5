import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createFreshDatabase, killAllChildServers, startChildServer } from './helpers/child-server.ts';

// What a newcomer meets on the first `npm start`: the embedded PostgreSQL (no DATABASE_URL), a
// port already taken, logs on a terminal. Real server processes, a real embedded cluster each.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TEST_TIMEOUT = 180_000;
const START_TIMEOUT = 120_000;
const dirs: string[] = [];

afterEach(killAllChildServers);
afterAll(async () => {
  for (const pid of dirs.flatMap(postgresProcessesUnder)) process.kill(pid, 'SIGKILL');
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A DATA_DIR of its own; as root, PostgreSQL runs as `postgres`, which must enter it. */
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'extendql-first-start-'));
  await chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

/** The environment of `npm start` with nothing configured but where its data goes. */
const embeddedEnv = (dir: string) => ({ DATA_DIR: dir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' });

/** Processes (PostgreSQL's) whose command line names `dir`: `postgres -D <dir>/postgres …`. */
function postgresProcessesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/\)\s+Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue; // exited, not yet reaped
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\)\s+Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function postmasterPid(dir: string): Promise<number> {
  return Number((await readFile(join(dir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('the embedded PostgreSQL', () => {
  it(
    'left running by a killed server is taken over by the next start and stopped on its Ctrl-C; a live owner shares it with apikey:create',
    async () => {
      const dir = await dataDir();
      const first = await startChildServer(embeddedEnv(dir), { startTimeoutMs: START_TIMEOUT });
      const postmaster = await postmasterPid(dir);
      expect(await readFile(join(dir, 'postgres.owner'), 'utf8')).toBe(`${first.pid}\n`);

      // kill -9: nobody stops the cluster, which keeps running.
      await first.kill('SIGKILL');
      expect(isRunning(postmaster)).toBe(true);

      const second = await startChildServer(embeddedEnv(dir), { startTimeoutMs: START_TIMEOUT });
      expect(await postmasterPid(dir)).toBe(postmaster);
      expect(second.logs().find((line) => /^taking over an embedded PostgreSQL/.test(String(line.msg)))).toMatchObject({ level: 40, postmaster });
      expect(await readFile(join(dir, 'postgres.owner'), 'utf8')).toBe(`${second.pid}\n`);

      // A command while the server runs shares the server's cluster: no warning, nothing stopped.
      const created = await run(process.execPath, ['src/admin/apikey.ts', 'create', '--name', 'while-running'], { DATA_DIR: dir });
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^Created API key /);
      expect(created.stdout + created.stderr).not.toMatch(/left running|taking over/);
      expect(isRunning(postmaster)).toBe(true);
      expect((await fetch(`${second.url}/health`)).status).toBeLessThan(500);

      // Ctrl-C: the server stops the cluster it took over, like one it started.
      expect(await second.kill('SIGINT')).toEqual({ code: 0, signal: null });
      expect(isRunning(postmaster)).toBe(false);
      // Its backends may take a moment longer than the postmaster on a busy machine.
      await expect.poll(() => postgresProcessesUnder(dir), { timeout: 10_000 }).toEqual([]);
      expect(existsSync(join(dir, 'postgres.owner'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'is stopped again when Ctrl-C comes while the server is still starting',
    async () => {
      const dir = await dataDir();
      const child = spawn(process.execPath, ['src/server.ts'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...embeddedEnv(dir) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        // The cluster is up; migrations, the queue and the HTTP server are yet to come.
        const started = output.includes('embedded PostgreSQL started');
        output += chunk;
        if (!started && output.includes('embedded PostgreSQL started')) child.kill('SIGINT');
      });
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      expect(exit, output).toEqual({ code: 0, signal: null });
      expect(output).toContain('shutting down');
      // Its backends may take a moment longer than the postmaster on a busy machine.
      await expect.poll(() => postgresProcessesUnder(dir), { timeout: 10_000 }).toEqual([]);
      expect(existsSync(join(dir, 'postgres.owner'))).toBe(false);
    },
    TEST_TIMEOUT,
  );
});

describe('a port already in use', () => {
  let blocker: Server | undefined;
  afterAll(() => blocker?.close());

  it(
    'ends the start with one line naming PORT, a non-zero exit and no stack, and stops the embedded PostgreSQL again',
    async () => {
      blocker = createServer();
      const port = await new Promise<number>((resolve) => blocker!.listen(0, '127.0.0.1', () => resolve((blocker!.address() as { port: number }).port)));
      const dir = await dataDir();
      const result = await run(process.execPath, ['src/server.ts'], { ...embeddedEnv(dir), PORT: String(port) });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`Port ${port} is in use (EADDRINUSE). Set PORT to another port, e.g. PORT=${port + 1} npm start.\n`);
      // It got as far as starting the cluster, and stopped it again.
      expect(result.stdout).toContain('embedded PostgreSQL started');
      // Its backends may take a moment longer than the postmaster on a busy machine.
      await expect.poll(() => postgresProcessesUnder(dir), { timeout: 10_000 }).toEqual([]);
      expect(existsSync(join(dir, 'postgres', 'postmaster.pid'))).toBe(false);
    },
    TEST_TIMEOUT,
  );
});

describe('a DATABASE_URL that cannot be reached', () => {
  it(
    'ends the start with one line naming the host, port and what to check, with no stack and no password',
    async () => {
      // A port nothing listens on: taken, then released.
      const probe = createServer();
      const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
      await new Promise((resolve) => probe.close(resolve));
      const dir = await dataDir();
      const env = { ...embeddedEnv(dir), DATABASE_URL: `postgresql://extendql:s3cret-password@127.0.0.1:${port}/extendql` };
      const result = await run(process.execPath, ['src/server.ts'], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED). Check that it runs and that DATABASE_URL is right, or unset DATABASE_URL to use the embedded PostgreSQL.\n`,
      );
      expect(`${result.stdout}${result.stderr}`).not.toContain('s3cret-password');
    },
    TEST_TIMEOUT,
  );
});

// util-linux's `script` runs the server on a real pseudo-terminal.
describe.skipIf(spawnSync('script', ['--version']).status !== 0)('logs', () => {
  /** Runs the server under a pseudo-terminal, presses Ctrl-C once it listens; what it printed. */
  async function onTerminal(env: Record<string, string>, whileListening: () => Promise<void> = async () => {}): Promise<{ output: string; code: number | null }> {
    const command = `exec '${process.execPath}' src/server.ts`;
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let pressed = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      // The terminal turns ^C into SIGINT for its whole foreground process group.
      // A moment after the line, as a person would: the signal handlers are installed just after it.
      if (!pressed && output.includes('extendql is listening')) {
        pressed = true;
        void whileListening().finally(() => setTimeout(() => child.stdin.write('\x03'), 500));
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { output, code };
  }

  const listeningLine = (output: string) => output.split(/\r?\n/).find((line) => line.includes('extendql is listening'))!;

  it(
    'are human-readable on a terminal, where Ctrl-C stops the server and its embedded PostgreSQL cleanly',
    async () => {
      const dir = await dataDir();
      let session: { postmaster: number; leader: number } | undefined;
      const { output, code } = await onTerminal(embeddedEnv(dir), async () => {
        const postmaster = await postmasterPid(dir);
        // Fields after the command name: state, ppid, process group, session.
        const [, , , leader] = readFileSync(`/proc/${postmaster}/stat`, 'utf8').split(')')[1]!.trim().split(' ');
        session = { postmaster, leader: Number(leader) };
      });
      // Without the level's colour codes.
      const human = listeningLine(stripVTControlCharacters(output));
      expect(human).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: extendql is listening \{"url":"http:\/\/127\.0\.0\.1:\d+\/graphql"/);
      expect(() => JSON.parse(human)).toThrow();
      // PostgreSQL leads a session of its own, so the terminal's SIGINT reached the server alone,
      // which stopped PostgreSQL after its own shutdown.
      expect(session!.leader).toBe(session!.postmaster);
      expect(code, output).toBe(0);
      expect(output).toContain('shutting down');
      // Its backends may take a moment longer than the postmaster on a busy machine.
      await expect.poll(() => postgresProcessesUnder(dir), { timeout: 10_000 }).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'closing the terminal (a hangup) stops the server and its embedded PostgreSQL, as Ctrl-C does',
    async () => {
      const dir = await dataDir();
      const child = spawn('script', ['-qec', `exec '${process.execPath}' src/server.ts`, '/dev/null'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...embeddedEnv(dir) },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      await new Promise<void>((resolve) =>
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          output += chunk;
          if (output.includes('extendql is listening')) resolve();
        }),
      );
      const postmaster = await postmasterPid(dir);
      // The signal handlers are installed just after the line.
      await new Promise((resolve) => setTimeout(resolve, 500));
      // The terminal window goes away: its pseudo-terminal closes and the kernel sends the server SIGHUP.
      child.kill('SIGKILL');
      await expect.poll(() => isRunning(postmaster), { timeout: 30_000 }).toBe(false);
      await expect.poll(() => postgresProcessesUnder(dir), { timeout: 10_000 }).toEqual([]);
      expect(existsSync(join(dir, 'postgres.owner'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it('are JSON on a terminal in production', async () => {
    const env = { DATABASE_URL: await createFreshDatabase(), HOST: '127.0.0.1', PORT: '0', NODE_ENV: 'production' };
    expect(JSON.parse(listeningLine((await onTerminal(env)).output))).toMatchObject({ level: 30, msg: 'extendql is listening' });
  });
});
