import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const MIGRATIONS_DIR = resolve(fileURLToPath(import.meta.url), '../../../prisma/migrations');

// Prisma's own bookkeeping table, column for column, so that `prisma migrate status/deploy`
// on a machine with Prisma's schema engine sees these migrations as applied.
const BOOKKEEPING = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Any constant works; it keeps two processes that start together from migrating at once.
const LOCK_ID = 72_657_486;

export interface MigrationResult {
  applied: string[];
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** Each migration directory's migration.sql, in name order, with the checksum Prisma records. */
async function readMigrations(dir: string): Promise<Migration[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

const APPLIED = 'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL';

/** The checksums of the migrations recorded as applied, by name ({} when none are recorded yet). */
async function appliedChecksums(client: pg.Client): Promise<Map<string, string>> {
  const done = await client.query<{ migration_name: string; checksum: string }>(APPLIED);
  return new Map(done.rows.map((row) => [row.migration_name, row.checksum]));
}

/**
 * Whether every migration is already applied, unchanged: the case of every start but the first,
 * answered by one query without taking the lock. Anything else (the table missing, a migration
 * missing or changed) goes the locked way, which applies or reports it.
 */
async function allApplied(client: pg.Client, migrations: Migration[]): Promise<boolean> {
  const done = await appliedChecksums(client).catch(() => null);
  return done !== null && migrations.every((migration) => done.get(migration.name) === migration.checksum);
}

/** Applies prisma/migrations/* in order, each in a transaction, and records them as Prisma does. */
export async function migrate(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const migrations = await readMigrations(dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection lost meanwhile fails the statement in flight; unheard, its 'error' event would crash.
  client.on('error', () => {});
  await client.connect();
  try {
    if (await allApplied(client, migrations)) return { applied: [] };
    return await migrateLocked(client, migrations);
  } finally {
    await client.end();
  }
}

/** Under the lock (another process may be migrating too): what is not yet applied, in order. */
async function migrateLocked(client: pg.Client, migrations: Migration[]): Promise<MigrationResult> {
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
    await client.query(BOOKKEEPING);
    const doneByName = await appliedChecksums(client);
    for (const { name, sql, checksum } of migrations) {
      const previous = doneByName.get(name);
      if (previous !== undefined) {
        if (previous !== checksum) throw new Error(`Migration ${name} was changed after it was applied`);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
           VALUES ($1, $2, $3, now(), 1)`,
          [randomUUID(), checksum, name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`Migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(name);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => {});
  }
  return { applied };
}
