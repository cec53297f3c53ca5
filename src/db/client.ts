import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { ReleasingPrismaPg } from './adapter.ts';

export type Db = PrismaClient;

/** Prisma, and the pool it runs on for the few hot statements that go to `pg` directly. */
export interface Database {
  db: Db;
  /** Prisma's own pool: raw SQL on it shares one connection limit with Prisma. */
  pool: pg.Pool;
  /** Disconnects Prisma and ends the pool. */
  close(): Promise<void>;
}

export function openDb(databaseUrl: string, options: { max?: number } = {}): Database {
  // A checkout waits at most connectionTimeoutMillis, for a free connection or a new one: a database
  // behind a dead link then fails requests in seconds (a retryable 503) instead of the operating
  // system's TCP timeout.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.max ?? 20, connectionTimeoutMillis: 10_000 });
  // An idle connection that breaks (say, PostgreSQL restarts) is dropped by the pool and replaced
  // at the next checkout; unheard, its 'error' event would crash the process.
  pool.on('error', () => {});
  // ReleasingPrismaPg: a transaction whose connection broke still gives it back (see adapter.ts).
  // disposeExternalPool: `db.$disconnect()` still ends the pool, as when Prisma made its own, so
  // callers that hold only `db` (createDb) release everything with it.
  const db = new PrismaClient({ adapter: new ReleasingPrismaPg(pool, { disposeExternalPool: true }) });
  return {
    db,
    pool,
    close: async () => {
      await db.$disconnect();
      // Prisma ends the pool only if it ever connected.
      if (!pool.ended) await pool.end();
    },
  };
}

export function createDb(databaseUrl: string, options: { max?: number } = {}): Db {
  return openDb(databaseUrl, options).db;
}
