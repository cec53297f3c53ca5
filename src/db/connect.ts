import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startEmbeddedPostgres } from './embedded.js';
import { migrate } from './migrate.js';

/** The configured database, or the embedded one under DATA_DIR; migrated either way. */
export async function openDatabase(config: Config, logger: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  let url = config.databaseUrl;
  let stop = async () => {};
  if (!url) {
    const embedded = await startEmbeddedPostgres(join(config.dataDir, 'postgres'), logger, 'extendql', { ownSession: true });
    url = embedded.url;
    stop = embedded.stop;
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
