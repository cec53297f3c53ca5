import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres, type EmbeddedOptions } from './embedded.ts';
import { migrate } from './migrate.ts';
import { isUnavailableError } from './unavailable.ts';

/** DATABASE_URL names a PostgreSQL that cannot be reached at start: one line says what to check (never the password). */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
  constructor(databaseUrl: string, cause: unknown) {
    const { hostname, port } = new URL(databaseUrl);
    const code = (cause as { code?: unknown }).code;
    super(
      `PostgreSQL at ${hostname}:${port || 5432} cannot be reached${typeof code === 'string' ? ` (${code})` : ''}. ` +
        'Check that it runs and that DATABASE_URL is right, or unset DATABASE_URL to use the embedded PostgreSQL.',
      { cause },
    );
  }
}

/** A database that is up and migrated; `stop()` stops the embedded PostgreSQL (nothing for DATABASE_URL). */
export interface OpenedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * The configured database, or the embedded one under DATA_DIR; migrated either way. The service
 * (server, worker) shuts down in order on Ctrl-C and stops the embedded PostgreSQL last, so it
 * runs it in a session of its own; the short commands (no signal handling) pass
 * `{ ownSession: false }`, and a Ctrl-C stops their cluster with them.
 */
export async function provisionDatabase(config: Config, logger: Logger, embedded: EmbeddedOptions = { ownSession: true }): Promise<OpenedDatabase> {
  let url = config.databaseUrl;
  let stop = async () => {};
  if (!url) {
    const cluster = await startEmbeddedPostgres(join(config.dataDir, 'postgres'), logger, 'extendql', embedded);
    url = cluster.url;
    stop = cluster.stop;
  }
  try {
    const { applied } = await migrate(url);
    if (applied.length) logger.info({ migrations: applied }, 'applied migrations');
  } catch (error) {
    await stop();
    throw config.databaseUrl && isUnavailableError(error) ? new DatabaseUnreachableError(config.databaseUrl, error) : error;
  }
  return { url, stop };
}
