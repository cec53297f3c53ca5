import { flushCompileCache } from 'node:module';
import type { App, AppOptions } from '../app.ts';
import type { Config } from '../config.ts';
import { provisionDatabase } from '../db/connect.ts';
import type { Logger } from '../logger.ts';
import { loadUndici } from '../net/undici.ts';

const nothing = () => {};

/**
 * Starts the app for an entry point (`npm start`, `npm run worker`), which imports only this
 * module and what it needs to read the configuration. The embedded PostgreSQL is spawned first:
 * it starts, a process of its own, while the app's modules load (loading them keeps this
 * process's event loop busy until they all have); then startApp takes the database over and
 * migrates it. If the app cannot even load, the database is stopped again.
 */
export async function bootApp(config: Config, logger: Logger, options: Pick<AppOptions, 'worker' | 'http'>): Promise<App> {
  let spawned!: () => void;
  const postmaster = new Promise<void>((resolve) => (spawned = resolve));
  const database = provisionDatabase(config, logger, { ownSession: true, onSpawn: spawned });
  // startApp awaits it; a failure while the modules still load is not an unhandled rejection.
  database.catch(() => {});
  // A configured DATABASE_URL, or a cluster already running, has no postmaster to wait for.
  await Promise.race([postmaster, database.then(nothing, nothing)]);
  const starting = import('../app.ts').then(
    ({ startApp }) => startApp(config, { ...options, logger, database }),
    async (error: unknown) => {
      await database.then((opened) => opened.stop(), nothing);
      throw error;
    },
  );
  // Once started: the modules left for the first upstream call (src/net/undici.ts), then what Node
  // compiled goes to its compile cache (src/require-node.mjs) now, not only at exit, so a process
  // that is killed still leaves it to the next start.
  void starting
    .then(() => loadUndici())
    .then(() => flushCompileCache())
    .catch(nothing);
  return starting;
}
