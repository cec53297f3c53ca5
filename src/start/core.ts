import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createPubSub } from 'graphql-yoga';
import type { AppOptions } from '../app.ts';
import type { Config } from '../config.ts';
import { openDb, type Db, type Database } from '../db/client.ts';
import { provisionDatabase } from '../db/connect.ts';
import { GenerationService } from '../generations/service.ts';
import type { SourceReachProblem } from '../generations/source-links.ts';
import { JobQueue } from '../jobs/queue.ts';
import type { Lifecycle } from '../lifecycle.ts';
import { createLogger, type Logger } from '../logger.ts';
import { Metrics } from '../metrics.ts';
import { startRedisEvents, type RedisEvents } from '../realtime/redis.ts';
import { createVideoStorage } from '../storage/index.ts';
import { removeStaleTempFiles, type VideoStorage } from '../storage/storage.ts';
import { startTelemetry } from '../telemetry.ts';
import { CreditGauge } from '../upstream/credits.ts';
import { SegmindClient } from '../upstream/segmind.ts';
import { startSimulator, type SimulatorHandle } from '../upstream/simulator/index.ts';
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
  events: { generationUpdated(id: string): void };
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
  return createPubSub<{ generationUpdated: [generationId: string, payload: string] }>(redis ? { eventTarget: redis.eventTarget } : undefined);
}

/** The process's logger: the one given, or one at LOG_LEVEL. */
export function appLogger(config: Config, options: AppOptions): Logger {
  return options.logger ?? createLogger(config.logLevel);
}

/** Starts the core in dependency order; each part registers its stop with `lifecycle`. */
export async function startCore(config: Config, options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<Core> {
  if (config.telemetry) {
    // Added first, so it runs last: spans of the shutdown itself are flushed too.
    lifecycle.add('telemetry', await startTelemetry(config.telemetry));
    logger.info({ endpoint: new URL(config.telemetry.endpoint).origin }, 'OpenTelemetry traces are exported');
  }
  const { databaseUrl, database, queue } = await startPersistence(config, logger, lifecycle);
  const { db } = database;
  const { simulator, segmindKey, segmindUrl } = await startUpstreamService(config, logger, lifecycle);
  const metrics = new Metrics({
    generationsByStatus: async () =>
      Object.fromEntries((await db.generation.groupBy({ by: ['status'], _count: { _all: true } })).map((row) => [row.status, row._count._all])),
    queueDepth: () => queue.depth(),
  });
  const segmind = new SegmindClient({
    observe: (operation, outcome, seconds) => metrics.upstreamSeconds.observe({ operation, outcome }, seconds),
    baseUrl: segmindUrl,
    apiKey: segmindKey,
    timeoutMs: config.upstreamTimeoutMs,
    circuitThreshold: config.upstreamCircuit.threshold,
    circuitCooldownMs: config.upstreamCircuit.cooldownMs,
  });
  lifecycle.add('upstream client', () => segmind.close());

  const storage = await startStorage(config, options, logger, lifecycle);
  // In one process, events stay in memory; with REDIS_URL they reach every process, so a
  // subscriber on one instance hears about work done by a worker on another.
  const redis = config.redisUrl ? await startRedisEvents(config.redisUrl, logger) : null;
  if (redis) lifecycle.add('redis', redis.stop);
  const pubsub = createGenerationPubSub(redis);
  const events = { generationUpdated: (id: string) => pubsub.publish('generationUpdated', id, id) };
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
  return { logger, databaseUrl, db, pool: database.pool, queue, simulator, segmind, segmindUrl, metrics, storage, redis, pubsub, events, webhooks, generations, videoUrl, origin };
}

/** The database (embedded or configured, migrated), its pool and the job queue on it. */
async function startPersistence(config: Config, logger: Logger, lifecycle: Lifecycle): Promise<{ databaseUrl: string; database: Database; queue: JobQueue }> {
  const embeddedOrConfigured = await provisionDatabase(config, logger);
  lifecycle.add('database', () => embeddedOrConfigured.stop());
  const databaseUrl = embeddedOrConfigured.url;

  // One pool for Prisma and for the raw SQL of the hot paths (extendVideo, the worker's polls).
  const database = openDb(databaseUrl);
  lifecycle.add('database pool', database.close);
  const queue = await JobQueue.start(databaseUrl, logger, {
    superviseIntervalSeconds: config.jobSuperviseIntervalSeconds,
    webhooks: config.webhooks,
  });
  lifecycle.add('job queue', () => queue.stop());
  return { databaseUrl, database, queue };
}

/** Segmind's address and key, or the simulator's when no SEGMIND_API_KEY is set. */
async function startUpstreamService(
  config: Config,
  logger: Logger,
  lifecycle: Lifecycle,
): Promise<{ simulator: SimulatorHandle | null; segmindKey: string; segmindUrl: string }> {
  if (config.segmind.apiKey) return { simulator: null, segmindKey: config.segmind.apiKey, segmindUrl: config.segmind.baseUrl };
  const segmindKey = randomBytes(24).toString('base64url');
  const simulator = await startSimulator({
    apiKey: segmindKey,
    mediaDir: join(config.dataDir, 'simulator'),
    queueMs: config.simulator.queueMs,
    processingMs: config.simulator.processingMs,
    fetchSources: true, // like Segmind: a source it cannot fetch fails the job
  });
  lifecycle.add('simulator', () => simulator.close());
  logger.warn(
    { simulator: simulator.url },
    'SEGMIND_API_KEY is not set: SIMULATING Segmind. Videos are generated locally and marked as simulated; no credits are spent. Set SEGMIND_API_KEY to use the real service.',
  );
  return { simulator, segmindKey, segmindUrl: simulator.url };
}

/** The configured video storage, with partial downloads of an earlier crash removed. */
async function startStorage(config: Config, options: AppOptions, logger: Logger, lifecycle: Lifecycle): Promise<VideoStorage> {
  const configured = await createVideoStorage(config);
  const { description, close } = configured;
  const storage = options.wrapStorage?.(configured.storage) ?? configured.storage;
  lifecycle.add('storage', async () => close());
  logger.info({ storage: description }, 'video storage');
  const stale = await removeStaleTempFiles(await storage.tempDir(), 60 * 60_000);
  if (stale) logger.info({ files: stale }, 'removed partial downloads left by an earlier crash');
  return storage;
}
