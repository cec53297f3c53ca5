import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createPubSub } from 'graphql-yoga';
import type { AppOptions } from '../app.ts';
import type { Config } from '../config.ts';
import { openDb, type Db, type Database } from '../db/client.ts';
import { provisionDatabase, type OpenedDatabase } from '../db/connect.ts';
import { GenerationService } from '../generations/service.ts';
import type { GenerationEvents } from '../generations/events.ts';
import type { SourceReachProblem } from '../generations/source-links.ts';
import { JobQueue } from '../jobs/queue.ts';
import type { Lifecycle } from '../lifecycle.ts';
import { createLogger, type Logger } from '../logger.ts';
import { Metrics } from '../metrics.ts';
import type { RedisEvents } from '../realtime/redis.ts';
import { createVideoStorage } from '../storage/index.ts';
import { removeStaleTempFiles, type VideoStorage } from '../storage/storage.ts';
import { startTelemetry } from '../telemetry.ts';
import { CreditGauge } from '../upstream/credits.ts';
import { SegmindClient } from '../upstream/segmind.ts';
import type { SimulatorHandle } from '../upstream/simulator/index.ts';
import { WebhookDeliverer } from '../webhooks/delivery.ts';

/** What the rest of the process is built on: storage, queue, upstream, events and the domain services. */
export interface Core {
  logger: Logger;
  databaseUrl: string;
  db: Db;
  /** The pool `db` runs on, for the hot statements that go to `pg` directly (src/db/). */
  pool: pg.Pool;
  queue: JobQueue;
  simulator: SimulatorHandle | null;
  segmind: SegmindClient;
  segmindUrl: string;
  metrics: Metrics;
  storage: VideoStorage;
  redis: RedisEvents | null;
  pubsub: GenerationPubSub;
  events: GenerationEvents;
  webhooks: WebhookDeliverer;
  generations: GenerationService;
  /** The public URL of a generated video. */
  videoUrl(videoId: string): string;
  /** Known only once the HTTP server is bound (PORT=0 picks one); read whenever a URL is made. */
  origin: PublicOrigin;
}

export interface PublicOrigin {
  baseUrl: string;
  sourceProblem: SourceReachProblem | null;
}

export type GenerationPubSub = ReturnType<typeof createGenerationPubSub>;

function createGenerationPubSub(redis: RedisEvents | null) {
  // generationUpdated: per generation, for its subscribers; apiKeyChanged: per key, for the response cache.
  return createPubSub<{ generationUpdated: [generationId: string, payload: string]; apiKeyChanged: [apiKeyId: string] }>(
    redis ? { eventTarget: redis.eventTarget } : undefined,
  );
}

/** The process's logger: the one given, or one at LOG_LEVEL. */
export function appLogger(config: Config, options: AppOptions): Logger {
  return options.logger ?? createLogger(config.logLevel);
}

/**
 * Starts the core. The parts that need nothing of each other start side by side: the database (the
 * embedded PostgreSQL and the migrations, already under way when `options.database` is given),
 * the simulator, the storage and Redis. The job engine starts on the migrated database in the
 * background (`queue.started`). Each part's stop is registered in a fixed order, so they stop in
 * reverse order, whichever finished starting first.
 */
export async function startCore(config: Config, options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<Core> {
  // Every stop is registered before the first await: a database already opening is stopped too
  // when anything here fails.
  const tracing = config.telemetry ? startTracing(config.telemetry, logger, lifecycle) : null;
  const persistence = startPersistence(config, options, logger, lifecycle);
  const metrics = new Metrics({
    generationsByStatus: async () => {
      const { db } = (await persistence).database;
      return Object.fromEntries((await db.generation.groupBy({ by: ['status'], _count: { _all: true } })).map((row) => [row.status, row._count._all]));
    },
    queueDepth: async () => (await persistence).queue.depth(),
  });
  const upstream = startUpstream(config, logger, lifecycle, metrics);
  const storage = startStorage(config, options, logger, lifecycle);
  // In one process, events stay in memory; with REDIS_URL they reach every process, so a
  // subscriber on one instance hears about work done by a worker on another.
  const redis = config.redisUrl ? lifecycle.whenStarted('redis', startRedis(config.redisUrl, logger), (events) => events.stop()) : null;
  const [{ databaseUrl, database, queue }, { simulator, segmind, segmindUrl }, videoStorage, redisEvents] = await Promise.all([persistence, upstream, storage, redis, tracing]);
  const parts = { logger, database, queue, segmind, storage: videoStorage, redis: redisEvents };
  return { databaseUrl, db: database.db, pool: database.pool, simulator, segmindUrl, metrics, ...parts, ...startServices(config, parts, lifecycle) };
}

/** OpenTelemetry's export. Its stop is registered first, so it runs last: spans of the shutdown itself are flushed too. */
async function startTracing(telemetry: NonNullable<Config['telemetry']>, logger: Logger, lifecycle: Lifecycle): Promise<void> {
  await lifecycle.whenStarted('telemetry', startTelemetry(telemetry), (stop) => stop());
  logger.info({ endpoint: new URL(telemetry.endpoint).origin }, 'OpenTelemetry traces are exported');
}

/** Redis for events between processes; ioredis is loaded only when REDIS_URL is set. */
async function startRedis(url: string, logger: Logger): Promise<RedisEvents> {
  const { startRedisEvents } = await import('../realtime/redis.ts');
  return startRedisEvents(url, logger);
}

type Services = Pick<Core, 'pubsub' | 'events' | 'webhooks' | 'generations' | 'videoUrl' | 'origin'>;

/** Events, webhooks and the generation service, on the parts started before them. */
function startServices(
  config: Config,
  parts: { logger: Logger; database: Database; queue: JobQueue; segmind: SegmindClient; storage: VideoStorage; redis: RedisEvents | null },
  lifecycle: Lifecycle,
): Services {
  const { logger, database, queue, segmind, storage } = parts;
  const { db } = database;
  const pubsub = createGenerationPubSub(parts.redis);
  const events: GenerationEvents = {
    generationUpdated: ({ id, apiKeyId }) => {
      pubsub.publish('generationUpdated', id, id);
      pubsub.publish('apiKeyChanged', apiKeyId);
    },
  };
  const credits = new CreditGauge(() => segmind.credits(), logger);

  const origin: PublicOrigin = { baseUrl: config.publicBaseUrl ?? '', sourceProblem: null };
  const videoUrl = (videoId: string) => `${origin.baseUrl}/videos/${videoId}.mp4`;
  const uploadUrl = (uploadId: string, extension: 'mp4' | 'mov') => `${origin.baseUrl}/videos/${uploadId}.${extension}`;
  const webhooks = new WebhookDeliverer({
    db,
    queue,
    logger,
    timeoutMs: config.webhooks.timeoutMs,
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    publicId: (id) => encodeGlobalID('Generation', id),
    videoUrl,
  });
  lifecycle.add('webhooks', () => webhooks.close());

  const generations = new GenerationService({
    db,
    pool: database.pool,
    webhooks,
    queue,
    events,
    videoUrl,
    uploadUrl,
    storage,
    availableCredits: () => credits.available(),
    reserveCredits: (usd) => credits.reserve(usd),
    limits: config.keyLimits,
    sourceUnreachable: () => origin.sourceProblem?.message ?? null,
  });
  return { pubsub, events, webhooks, generations, videoUrl, origin };
}

/**
 * The database (embedded or configured, migrated), its pool, and the job queue on it, which goes
 * on starting in the background.
 */
async function startPersistence(config: Config, options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<{ databaseUrl: string; database: Database; queue: JobQueue }> {
  const opening = lifecycle.whenStarted('database', options.database ?? provisionDatabase(config, logger), (opened: OpenedDatabase) => opened.stop());
  // One pool for Prisma and for the raw SQL of the hot paths (extendVideo, the worker's polls).
  const database = lifecycle.whenStarted(
    'database pool',
    opening.then(({ url }) => openDb(url)),
    (opened) => opened.close(),
  );
  const queue = lifecycle.whenStarted(
    'job queue',
    opening.then(({ url }) => JobQueue.start(url, logger, { superviseIntervalSeconds: config.jobSuperviseIntervalSeconds, webhooks: config.webhooks })),
    (started) => started.stop(),
  );
  return { databaseUrl: (await opening).url, database: await database, queue: await queue };
}

/**
 * Segmind's client, on Segmind or on the simulator when no SEGMIND_API_KEY is set. The
 * simulator's modules are loaded only then.
 */
async function startUpstream(config: Config, logger: Logger, lifecycle: Lifecycle, metrics: Metrics): Promise<{ simulator: SimulatorHandle | null; segmind: SegmindClient; segmindUrl: string }> {
  const service = config.segmind.apiKey
    ? Promise.resolve({ simulator: null, segmindKey: config.segmind.apiKey, segmindUrl: config.segmind.baseUrl })
    : lifecycle.whenStarted('simulator', startSimulated(config, logger), ({ simulator }) => simulator.close());
  const client = lifecycle.whenStarted(
    'upstream client',
    service.then(
      ({ segmindKey, segmindUrl }) =>
        new SegmindClient({
          observe: (operation, outcome, seconds) => metrics.upstreamSeconds.observe({ operation, outcome }, seconds),
          baseUrl: segmindUrl,
          apiKey: segmindKey,
          timeoutMs: config.upstreamTimeoutMs,
          circuitThreshold: config.upstreamCircuit.threshold,
          circuitCooldownMs: config.upstreamCircuit.cooldownMs,
        }),
    ),
    (segmind) => segmind.close(),
  );
  const { simulator, segmindUrl } = await service;
  return { simulator, segmind: await client, segmindUrl };
}

/** The built-in simulator in Segmind's place, with a random key. */
async function startSimulated(config: Config, logger: Logger): Promise<{ simulator: SimulatorHandle; segmindKey: string; segmindUrl: string }> {
  const { startSimulator } = await import('../upstream/simulator/index.ts');
  const segmindKey = randomBytes(24).toString('base64url');
  const simulator = await startSimulator({
    apiKey: segmindKey,
    mediaDir: join(config.dataDir, 'simulator'),
    queueMs: config.simulator.queueMs,
    processingMs: config.simulator.processingMs,
    fetchSources: true, // like Segmind: a source it cannot fetch fails the job
  });
  logger.warn(
    { simulator: simulator.url },
    'SEGMIND_API_KEY is not set: SIMULATING Segmind. Videos are generated locally and marked as simulated; no credits are spent. Set SEGMIND_API_KEY to use the real service.',
  );
  return { simulator, segmindKey, segmindUrl: simulator.url };
}

/** The configured video storage, with partial downloads of an earlier crash removed. */
function startStorage(config: Config, options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<VideoStorage> {
  const opening = createVideoStorage(config);
  lifecycle.whenStarted('storage', opening, async ({ close }) => close());
  return opening.then(async (configured) => {
    const storage = options.wrapStorage?.(configured.storage) ?? configured.storage;
    logger.info({ storage: configured.description }, 'video storage');
    const stale = await removeStaleTempFiles(await storage.tempDir(), 60 * 60_000);
    if (stale) logger.info({ files: stale }, 'removed partial downloads left by an earlier crash');
    return storage;
  });
}
