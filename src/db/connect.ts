import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmbeddedPostgres, type EmbeddedOptions } from './embedded.js';
import { migrate } from './migrate.js';

/**
 * The configured database, or the embedded one under DATA_DIR; migrated either way. The service
 * (server, worker) shuts down in order on Ctrl-C and stops the embedded PostgreSQL last, so it
 * runs it in a session of its own; the short commands (no signal handling) pass
 * `{ ownSession: false }`, and a Ctrl-C stops their cluster with them.
 */
export async function openDatabase(config: Config, logger: Logger, embedded: EmbeddedOptions = { ownSession: true }): Promise<{ url: string; stop(): Promise<void> }> {
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
    throw error;
  }
  return { url, stop };
}
