import type { Server } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Config } from './config.ts';
import type { RequestContext, ServerContext } from './context.ts';
import type { Db } from './db/client.ts';
import type { OpenedDatabase } from './db/connect.ts';
import type { JobQueue } from './jobs/queue.ts';
import { Lifecycle } from './lifecycle.ts';
import type { Logger } from './logger.ts';
import { appLogger, startCore } from './start/core.ts';
import { startHttp } from './start/http.ts';
import { startWorker } from './start/worker.ts';
import type { VideoStorage } from './storage/storage.ts';
import type { SimulatorHandle } from './upstream/simulator/index.ts';

export interface App {
  /** Where the HTTP server listens, e.g. http://127.0.0.1:4000 */
  url: string;
  publicBaseUrl: string;
  server: Server | null;
  yoga: YogaServerInstance<ServerContext, RequestContext> | null;
  db: Db;
  databaseUrl: string;
  queue: JobQueue;
  simulator: SimulatorHandle | null;
  logger: Logger;
  close(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  /** Work the job queue in this process (default true). */
  worker?: boolean;
  /** Serve HTTP (default true); `npm run worker` runs without it. */
  http?: boolean;
  /** Wraps the configured video storage (tests use it to make writes fail). */
  wrapStorage?: (storage: VideoStorage) => VideoStorage;
  /** The database, already opening (src/start/boot.ts starts it while this module loads); else opened here. */
  database?: Promise<OpenedDatabase>;
}

/**
 * Starts everything extendql needs: the core (database, queue, upstream, storage, events,
 * services), then the worker and the HTTP server if asked for. The HTTP server listens as soon as
 * the database is migrated and the core is up; the job engine and the workers finish starting
 * behind it (until then /ready answers 503, "queue": "starting"). Resolves once everything has
 * started; `close()` stops it all in reverse order, once, as it does when the start fails.
 */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = appLogger(config, options);
  const lifecycle = new Lifecycle(logger);
  const close = () => lifecycle.close();
  try {
    const core = await startCore(config, options, logger, lifecycle);
    const { db, databaseUrl, queue, simulator } = core;
    const working = (options.worker ?? true) ? startWorker(config, core, lifecycle) : Promise.resolve();
    // Awaited below, after the HTTP server; a failure meanwhile is not an unhandled rejection.
    working.catch(() => {});
    const http = options.http === false ? null : await startHttp(config, core, lifecycle);
    await Promise.all([queue.started, working]);
    if (!http) {
      logger.info({ worker: options.worker ?? true }, 'extendql worker is running (no HTTP server)');
      return { url: '', publicBaseUrl: core.origin.baseUrl, server: null, yoga: null, db, databaseUrl, queue, simulator, logger, close };
    }
    const { url, publicBaseUrl, server, yoga } = http;
    logger.info({ worker: options.worker ?? true }, 'job engine started');
    return { url, publicBaseUrl, server, yoga, db, databaseUrl, queue, simulator, logger, close };
  } catch (error) {
    await close();
    throw error;
  }
}
