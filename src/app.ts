import type { Server } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Config } from './config.ts';
import type { RequestContext, ServerContext } from './context.ts';
import type { Db } from './db/client.ts';
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
}

/**
 * Starts everything extendql needs, in dependency order: the core (database, queue, upstream,
 * storage, events, services), then the worker and the HTTP server if asked for. `close()` stops
 * them in reverse order, once.
 */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = appLogger(config, options);
  const lifecycle = new Lifecycle(logger);
  const close = () => lifecycle.close();
  try {
    const core = await startCore(config, options, logger, lifecycle);
    const { db, databaseUrl, queue, simulator } = core;
    if (options.worker ?? true) await startWorker(config, core, lifecycle);
    if (options.http === false) {
      logger.info({ worker: options.worker ?? true }, 'extendql worker is running (no HTTP server)');
      return { url: '', publicBaseUrl: core.origin.baseUrl, server: null, yoga: null, db, databaseUrl, queue, simulator, logger, close };
    }
    const { url, publicBaseUrl, server, yoga } = await startHttp(config, core, lifecycle);
    return { url, publicBaseUrl, server, yoga, db, databaseUrl, queue, simulator, logger, close };
  } catch (error) {
    await close();
    throw error;
  }
}
