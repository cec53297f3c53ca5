import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKillablePostgres as startCluster } from '../../scripts/lib/killable-postgres.ts';

export interface KillablePostgres {
  /** Connection string of a database of its own. */
  url: string;
  port: number;
  /** A further fresh, empty database on this cluster. */
  createDatabase(): Promise<string>;
  /** kill -9 of the postmaster; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  close(): Promise<void>;
}

/** A PostgreSQL of the test's own (never the machine's), to take away and bring back. */
export async function startKillablePostgres(): Promise<KillablePostgres> {
  const work = await mkdtemp(join(tmpdir(), 'extendql-killable-pg-'));
  // As root, PostgreSQL runs as a `postgres` user, which must be able to enter the directory.
  await chmod(work, 0o755);
  const cluster = await startCluster(join(work, 'postgres'));
  return {
    url: await cluster.createDatabase('extendql'),
    port: cluster.port,
    createDatabase: () => cluster.createDatabase('extendql_killable'),
    kill: () => cluster.kill(),
    restart: () => cluster.start(),
    async close() {
      await cluster.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
