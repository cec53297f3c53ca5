import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';
import { ensureWebBundle } from '../scripts/build-web.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL URL with the right to create databases: one per test file. */
    adminDatabaseUrl: string;
  }
}

/**
 * Real PostgreSQL for the suite: DATABASE_URL when set, otherwise an embedded cluster. The studio's
 * bundle is rebuilt first when web/ changed since it was built, so no test runs a stale one.
 */
export default async function setup(project: TestProject) {
  await ensureWebBundle();
  if (process.env.DATABASE_URL) {
    project.provide('adminDatabaseUrl', process.env.DATABASE_URL);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'extendql-pg-'));
  // As root, PostgreSQL runs as a `postgres` user, which must be able to enter the directory.
  await chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres(join(dir, 'postgres'), createLogger('warn'), 'postgres');
  project.provide('adminDatabaseUrl', embedded.adminUrl);
  return async () => {
    await embedded.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
