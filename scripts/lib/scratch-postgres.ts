import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { createLogger } from '../../src/logger.ts';

/**
 * A scratch area for the soak and bench scripts: a temp directory, and PostgreSQL from
 * DATABASE_URL or an embedded cluster inside that directory, where fresh databases are made.
 */
export async function scratchPostgres(prefix: string) {
  const work = await mkdtemp(join(tmpdir(), `extendql-${prefix}-`));
  // As root, PostgreSQL runs as a `postgres` user, which must be able to enter the directory.
  await chmod(work, 0o755);
  let adminUrl = process.env.DATABASE_URL;
  let stopDb = async () => {};
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres(join(work, 'postgres'), createLogger('warn'), 'postgres');
    adminUrl = embedded.adminUrl;
    stopDb = embedded.stop;
  }
  const admin = adminUrl;
  return {
    work,
    async createDatabase(): Promise<string> {
      const name = `extendql_${prefix}_${randomBytes(4).toString('hex')}`;
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      return Object.assign(new URL(admin), { pathname: `/${name}` }).toString();
    },
    async close() {
      await stopDb();
      await rm(work, { recursive: true, force: true });
    },
  };
}
