import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrate } from '../src/db/migrate.ts';
import { createTestDatabase } from './helpers/stack.ts';

// The project's migration runner on real PostgreSQL: every start runs it, so the common case (all
// applied) must be one query that waits for nobody, and anything else must still go the safe way.

const LOCK_ID = 72_657_486;
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A copy of prisma/migrations to change. */
async function migrationsCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'extendql-migrations-'));
  dirs.push(dir);
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

/** A second session holding the runner's advisory lock, as another process migrating would. */
async function holdLock(databaseUrl: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
  return {
    async release() {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]);
      await client.end();
    },
  };
}

const settlesWithin = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);

describe('migrate', () => {
  it('applies every migration once; later runs apply none and do not wait for the migration lock', async () => {
    const databaseUrl = await createTestDatabase();
    const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    expect(names.length).toBeGreaterThan(0);
    expect((await migrate(databaseUrl)).applied).toEqual(names);

    const lock = await holdLock(databaseUrl);
    try {
      const again = migrate(databaseUrl);
      expect(await settlesWithin(again, 5000)).toBe(true);
      expect((await again).applied).toEqual([]);
    } finally {
      await lock.release();
    }
  });

  it('applies a new migration under the lock, after the process holding it lets go', async () => {
    const databaseUrl = await createTestDatabase();
    const dir = await migrationsCopy();
    await migrate(databaseUrl, dir);
    await mkdir(join(dir, '99990101000000_probe_table'));
    await writeFile(join(dir, '99990101000000_probe_table', 'migration.sql'), 'CREATE TABLE "MigrationProbe" (id int PRIMARY KEY);');

    const lock = await holdLock(databaseUrl);
    const pending = migrate(databaseUrl, dir);
    expect(await settlesWithin(pending, 500)).toBe(false);
    await lock.release();
    expect((await pending).applied).toEqual(['99990101000000_probe_table']);

    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const table = await client.query(`SELECT to_regclass('"MigrationProbe"') AS name`);
    await client.end();
    expect(table.rows[0]).toEqual({ name: '"MigrationProbe"' });
  });

  it('refuses a migration that was changed after it was applied', async () => {
    const databaseUrl = await createTestDatabase();
    const dir = await migrationsCopy();
    await migrate(databaseUrl, dir);
    const [first] = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    await writeFile(join(dir, first!, 'migration.sql'), '-- changed\nSELECT 1;');
    await expect(migrate(databaseUrl, dir)).rejects.toThrow(`Migration ${first} was changed after it was applied`);
  });
});
