import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { usePrometheus } from '@graphql-yoga/plugin-prometheus';
import { createPubSub, createYoga, type YogaServerInstance } from 'graphql-yoga';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { authenticate } from './auth/api-keys.js';
import type { Config } from './config.js';
import type { RequestContext, ServerContext } from './context.js';
import { openDb, type Db } from './db/client.js';
import { openDatabase } from './db/connect.js';
import { startRetentionSweep } from './generations/cleanup.js';
import { GenerationService } from './generations/service.js';
import { GenerationWorker } from './generations/worker.js';
import { sourceReachProblem, submitSourceUrls, type SourceReachProblem } from './generations/source-links.js';
import { graphiqlOptions, renderGraphiQLPage } from './graphiql.js';
import { useEntityLimits } from './http/entities.js';
import { NotReady, useReadiness } from './http/readiness.js';
import { streamingUploadsFor } from './http/multipart.js';
import { bodyLimitExceeded, isMultipart, MAX_OPERATION_COST, securityPlugins, useBodyLimit } from './http/security.js';
import { limitBodyTime, serverTimeouts } from './http/timeouts.js';
import { maskedErrors, useMetricsToken, useStatusOnlyWithoutData, yogaLogging } from './http/yoga.js';
import { requestIdOf, trackRequest } from './http/request-id.js';
import { createSampleHandler } from './http/samples.js';
import { createVideoHandler } from './http/videos.js';
import { attachWebSocket } from './http/websocket.js';
import { JobQueue } from './jobs/queue.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { startRedisEvents } from './realtime/redis.js';
import { SubscriptionSlots } from './realtime/subscription-slots.js';
import { schema } from './schema/index.js';
import { createVideoStorage } from './storage/index.js';
import { removeStaleTempFiles, type VideoStorage } from './storage/storage.js';
import { CreditGauge } from './upstream/credits.js';
import { SegmindClient } from './upstream/segmind.js';
import { startSimulator, type SimulatorHandle } from './upstream/simulator/index.js';
import { startTelemetry, useTracing } from './telemetry.js';
import { WebhookDeliverer } from './webhooks/delivery.js';

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

/** Starts everything extendql needs, in dependency order, and returns a handle to stop it. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => logger.error({ err: error }, 'shutdown step failed'));
  };

  try {
    if (config.telemetry) {
      // Pushed first, so it runs last: spans of the shutdown itself are flushed too.
      cleanups.push(await startTelemetry(config.telemetry));
      logger.info({ endpoint: new URL(config.telemetry.endpoint).origin }, 'OpenTelemetry traces are exported');
    }
    const database = await openDatabase(config, logger);
    cleanups.push(() => database.stop());
    const databaseUrl = database.url;

    // One pool for Prisma and for the raw SQL of the extendVideo path (GenerationService).
    const { db, pool, close: closeDb } = openDb(databaseUrl);
    cleanups.push(closeDb);
    const queue = await JobQueue.start(databaseUrl, logger, {
      superviseIntervalSeconds: config.jobSuperviseIntervalSeconds,
      webhooks: config.webhooks,
    });
    cleanups.push(() => queue.stop());

    let simulator: SimulatorHandle | null = null;
    let segmindKey = config.segmind.apiKey;
    let segmindUrl = config.segmind.baseUrl;
    if (!segmindKey) {
      segmindKey = randomBytes(24).toString('base64url');
      simulator = await startSimulator({
        apiKey: segmindKey,
        mediaDir: join(config.dataDir, 'simulator'),
        queueMs: config.simulator.queueMs,
        processingMs: config.simulator.processingMs,
        fetchSources: true, // like Segmind: a source it cannot fetch fails the job
      });
      cleanups.push(() => simulator!.close());
      segmindUrl = simulator.url;
      logger.warn(
        { simulator: simulator.url },
        'SEGMIND_API_KEY is not set: SIMULATING Segmind. Videos are generated locally and marked as simulated; no credits are spent. Set SEGMIND_API_KEY to use the real service.',
      );
    }
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
    cleanups.push(() => segmind.close());

    const configured = await createVideoStorage(config);
    const { description: storageDescription, close: closeStorage } = configured;
    const storage = options.wrapStorage?.(configured.storage) ?? configured.storage;
    cleanups.push(async () => closeStorage());
    logger.info({ storage: storageDescription }, 'video storage');
    const stale = await removeStaleTempFiles(await storage.tempDir(), 60 * 60_000);
    if (stale) logger.info({ files: stale }, 'removed partial downloads left by an earlier crash');
    // In one process, events stay in memory; with REDIS_URL they reach every process, so a
    // subscriber on one instance hears about work done by a worker on another.
    const redis = config.redisUrl ? await startRedisEvents(config.redisUrl, logger) : null;
    if (redis) cleanups.push(redis.stop);
    const pubsub = createPubSub<{ generationUpdated: [generationId: string, payload: string] }>(redis ? { eventTarget: redis.eventTarget } : undefined);
    const events = { generationUpdated: (id: string) => pubsub.publish('generationUpdated', id, id) };
    const credits = new CreditGauge(() => segmind.credits(), logger);

    // The public origin is known only once the port is bound (PORT=0 picks one).
    let publicBaseUrl = config.publicBaseUrl ?? '';
    let sourceProblem: SourceReachProblem | null = null;
    const videoUrl = (videoId: string) => `${publicBaseUrl}/videos/${videoId}.mp4`;
    const uploadUrl = (uploadId: string, extension: 'mp4' | 'mov') => `${publicBaseUrl}/videos/${uploadId}.${extension}`;

    const webhooks = new WebhookDeliverer({
      db,
      queue,
      logger,
      timeoutMs: config.webhooks.timeoutMs,
      allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
      publicId: (id) => encodeGlobalID('Generation', id),
      videoUrl,
    });
    cleanups.push(() => webhooks.close());

    const generations = new GenerationService({
      db,
      pool,
      webhooks,
      queue,
      events,
      videoUrl,
      uploadUrl,
      storage,
      availableCredits: () => credits.available(),
      reserveCredits: (usd) => credits.reserve(usd),
      limits: config.keyLimits,
      sourceUnreachable: () => sourceProblem?.message ?? null,
    });

    if (options.worker ?? true) {
      const worker = new GenerationWorker({
        db,
        segmind,
        storage,
        events,
        logger,
        poll: config.poll,
        deadlineMs: config.generationDeadlineMs,
        maxVideoBytes: config.maxVideoBytes,
        onRetry: (code) => metrics.retries.inc({ code }),
        webhooks,
        sourceUrl: submitSourceUrls({ db, storage, deadlineMs: config.generationDeadlineMs, logger }),
      });
      await queue.work(config.workerConcurrency, (job) => worker.step(job.generationId));
      await queue.workWebhooks(4, (job) => webhooks.deliver(job.generationId));
      // A safety net for steps that were lost: look for quiet unfinished generations now and then,
      // and for ended ones whose webhook was never scheduled.
      const sweep = async () => {
        for (const id of await worker.stalled(config.sweep.stallAfterMs)) await queue.enqueue(id);
        await webhooks.scheduleMissed(10_000);
      };
      const sweeper = setInterval(
        () => void sweep().catch((error: Error) => logger.warn({ err: error.message }, 'stalled-generation sweep failed')),
        config.sweep.intervalMs,
      );
      sweeper.unref();
      cleanups.push(async () => clearInterval(sweeper));
      if (config.retention) cleanups.push(startRetentionSweep({ db, storage, logger }, config.retention));
      // Stopped before the upstream client and the database: steps in flight finish first.
      cleanups.push(() => queue.stop({ graceful: true, timeoutMs: config.shutdownGraceMs }));
    }

    if (options.http === false) {
      logger.info({ worker: options.worker ?? true }, 'extendql worker is running (no HTTP server)');
      return { url: '', publicBaseUrl, server: null, yoga: null, db, databaseUrl, queue, simulator, logger, close };
    }

    const subscriptionSlots = new SubscriptionSlots(config.maxSubscriptionsPerKey);
    const yoga = createYoga<ServerContext, RequestContext>({
      schema,
      graphqlEndpoint: '/graphql',
      graphiql: graphiqlOptions,
      // The GraphiQL bundle is served from this server, not a CDN, so it works offline too.
      renderGraphiQL: renderGraphiQLPage,
      landingPage: false,
      maskedErrors,
      logging: yogaLogging(logger),
      context: async ({ request, req }) => ({
        log: logger.child({ reqId: requestIdOf(req) }),
        requestId: requestIdOf(req),
        apiKey: await authenticate(db, request.headers.get('x-api-key')),
        db,
        generations,
        videoUrl,
        generationEvents: (id: string) => pubsub.subscribe('generationUpdated', id),
        subscriptionSlots,
      }),
      batching: false,
      // Declared lengths are judged in bodyLimitExceeded (below) before yoga; useBodyLimit counts
      // chunked bodies.
      maxRequestBodySize: false,
      plugins: [
        ...securityPlugins(),
        useEntityLimits({ maxRepresentations: config.maxEntityRepresentations, maxCost: MAX_OPERATION_COST }),
        useStatusOnlyWithoutData(),
        useBodyLimit(config.maxUploadRequestBytes),
        // Multipart (upload) requests: files go to disk as they arrive, never whole into memory.
        streamingUploadsFor(config, storage),
        useTracing((context) => (context as RequestContext).requestId),
        useMetricsToken(config.metricsToken),
        usePrometheus({
          registry: metrics.registry,
          endpoint: '/metrics',
          // Request duration by operation and error counts. The plugin's other defaults (a summary with
          // sliding-window quantiles, one histogram per phase, a walk of every document for deprecated
          // fields) cost more per request than the lookup they measure.
          metrics: {
            graphql_yoga_http_duration: true,
            graphql_envelop_error_result: true,
            graphql_envelop_request: false,
            graphql_envelop_request_duration: false,
            graphql_envelop_request_time_summary: false,
            graphql_envelop_deprecated_field: false,
            graphql_envelop_phase_parse: false,
            graphql_envelop_phase_validate: false,
            graphql_envelop_phase_context: false,
            graphql_envelop_phase_execute: false,
            graphql_envelop_phase_subscribe: false,
            graphql_envelop_schema_change: false,
          },
        }),
        // Ready when the database and the job queue answer, the upstream circuit is not open and
        // Redis (when configured) is connected.
        useReadiness(
          [
            { name: 'database', check: () => db.$queryRaw`SELECT 1` },
            { name: 'queue', check: () => queue.depth() },
            {
              name: 'upstream',
              check: async () => {
                if (segmind.circuit.state === 'open') throw new NotReady('open');
                return segmind.circuit.state;
              },
            },
            ...(redis
              ? [
                  {
                    name: 'redis',
                    check: async () => {
                      if (!redis.available()) throw new NotReady('unavailable');
                    },
                  },
                ]
              : []),
          ],
          logger,
        ),
      ],
    });

    const serveVideo = createVideoHandler({
      storage,
      // Generated videos, then uploaded sources (both ids are random and unguessable).
      lookup: async (id) => {
        const select = { storageKey: true, byteSize: true, sha256: true, contentType: true } as const;
        return (await db.video.findUnique({ where: { id }, select })) ?? (await db.sourceUpload.findUnique({ where: { id }, select }));
      },
    });
    // The examples' source clip: made now when simulating (a newcomer's first start), else when first asked for.
    const samples = createSampleHandler(config.dataDir, { prepareNow: simulator !== null, logger });
    const server = createServer(serverTimeouts(config.http), (req, res) => {
      trackRequest(req, res, logger);
      if (req.url?.startsWith('/videos/')) void serveVideo(req, res);
      else if (req.url?.startsWith('/samples/')) void samples.handle(req, res);
      else if (!bodyLimitExceeded(req, res, isMultipart(req) ? config.maxUploadRequestBytes : config.maxRequestBytes)) {
        if (!isMultipart(req)) limitBodyTime(req, res, config.http.requestTimeoutMs);
        void yoga.handle(req, res);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const closeWebSocket = attachWebSocket(server, yoga, { maxPayloadBytes: config.maxRequestBytes, authenticate: (key) => authenticate(db, key), logger });
    cleanups.push(closeWebSocket);
    const { port } = server.address() as AddressInfo;
    const localHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
    const url = `http://${localHost}:${port}`;
    publicBaseUrl ||= url;
    sourceProblem = sourceReachProblem(config, segmindUrl, publicBaseUrl);
    if (sourceProblem) logger.warn({ publicBaseUrl, segmind: new URL(segmindUrl).origin }, sourceProblem.detail);

    cleanups.push(async () => yoga.dispose());

    logger.info({ url: `${url}/graphql`, publicBaseUrl, simulator: simulator !== null }, 'extendql is listening');
    return { url, publicBaseUrl, server, yoga, db, databaseUrl, queue, simulator, logger, close };
  } catch (error) {
    await close();
    throw error;
  }
}
