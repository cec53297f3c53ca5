import { resolve } from 'node:path';
import { z } from 'zod';

/** Empty strings in the environment mean "unset", as in most shells' `FOO= cmd`. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

const positiveInt = z.coerce.number().int().positive();

const EnvSchema = z.object({
  /** PostgreSQL connection string. Unset: an embedded PostgreSQL is started under DATA_DIR. */
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  /** Segmind credential. Unset: the built-in simulator answers instead of Segmind. */
  SEGMIND_API_KEY: optional(z.string().min(1)),
  /** Redis for subscription events across processes. Unset: events stay inside each process. */
  REDIS_URL: optional(z.url({ protocol: /^rediss?$/ })),
  SEGMIND_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.segmind.com'),
  /** Public origin of this server, used for video URLs and the source URLs sent to Segmind. */
  PUBLIC_BASE_URL: optional(z.url({ protocol: /^https?$/ })),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** Where embedded PostgreSQL and local videos live by default. */
  DATA_DIR: z.string().min(1).default('data'),
  STORAGE_DIR: optional(z.string().min(1)),
  /** S3-compatible bucket for videos. Unset: videos are files under STORAGE_DIR. */
  S3_BUCKET: optional(z.string().min(3).max(63)),
  /** For S3-compatible services (MinIO, R2, ...). Unset: AWS S3 in S3_REGION. */
  S3_ENDPOINT: optional(z.url({ protocol: /^https?$/ })),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** Unset: the AWS SDK's default credential chain (env, profile, instance role, ...) applies. */
  S3_ACCESS_KEY_ID: optional(z.string().min(1)),
  S3_SECRET_ACCESS_KEY: optional(z.string().min(1)),
  /** bucket-in-path URLs. Unset: on when S3_ENDPOINT is set, since most S3-compatible servers need it. */
  S3_FORCE_PATH_STYLE: optional(z.stringbool()),
  /** Prepended to every object key, e.g. `extendql/videos/`; a missing trailing slash is added. */
  S3_PREFIX: optional(
    z
      .string()
      .regex(/^[A-Za-z0-9!_.*'()/-]+$/)
      .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'must be relative, without `..`'),
  ),
  /**
   * Wait between status polls: POLL_INTERVAL_MS, times POLL_BACKOFF per poll, at most
   * POLL_MAX_INTERVAL_MS. The default polls every second, so a finished video is noticed within
   * about a second. Segmind's rate limit (5/min free, 50/min Pro) may count polls: with many
   * generations in flight, raise POLL_INTERVAL_MS or POLL_BACKOFF (a 429 is waited out either way).
   */
  POLL_INTERVAL_MS: positiveInt.default(1000),
  POLL_MAX_INTERVAL_MS: positiveInt.default(10_000),
  POLL_BACKOFF: z.coerce.number().min(1).default(1),
  /** How long one upstream HTTP call may take before it counts as a timeout. */
  UPSTREAM_TIMEOUT_MS: positiveInt.default(30_000),
  /** Consecutive upstream server failures that open the circuit, and how long it stays open. */
  UPSTREAM_CIRCUIT_THRESHOLD: positiveInt.default(5),
  UPSTREAM_CIRCUIT_COOLDOWN_MS: positiveInt.default(30_000),
  /**
   * How long a generation may take. Transient failures (429, 5xx, timeouts, broken downloads, full
   * storage) are retried until then; past it nothing is submitted, and a job Segmind is still
   * running fails with DEADLINE_EXCEEDED (a finished one is still collected).
   */
  GENERATION_DEADLINE_MS: positiveInt.default(30 * 60_000),
  /** Largest MP4 accepted from upstream. */
  MAX_VIDEO_BYTES: positiveInt.default(500 * 1024 * 1024),
  /** How often the job engine looks for steps of processes that died (seconds, at least 1). */
  JOB_SUPERVISE_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(10),
  /** Per API key: generations started per rolling minute, and in progress at once. */
  RATE_LIMIT_PER_MINUTE: positiveInt.default(10),
  MAX_CONCURRENT_PER_KEY: positiveInt.default(10),
  /** Per API key: subscriptions open at once in one process (SSE and WebSocket together). */
  MAX_SUBSCRIPTIONS_PER_KEY: positiveInt.default(100),
  /**
   * Query answers kept in memory per API key for this long (ms), so repeated reads (a dashboard
   * re-reading its page) skip the database. 0 (the default) turns the cache off. A key's answers are
   * dropped when one of its generations changes or it runs a mutation; see the README.
   */
  RESPONSE_CACHE_TTL_MS: z.coerce.number().int().min(0).default(0),
  /** Most answers the response cache keeps, and most bytes of them (JSON); the oldest go first. */
  RESPONSE_CACHE_MAX_ENTRIES: positiveInt.max(100_000).default(1000),
  RESPONSE_CACHE_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
  /** Per API key: estimated USD it may spend per UTC day. Unset: no budget. */
  DAILY_BUDGET_USD: optional(z.coerce.number().positive()),
  /** Largest GraphQL request body accepted. */
  MAX_REQUEST_BYTES: positiveInt.default(1024 * 1024),
  /** Largest multipart (upload) request read. Files between 50 MB and this get a typed error naming the limit; larger bodies are refused unread (413). */
  MAX_UPLOAD_REQUEST_BYTES: positiveInt.default(64 * 1024 * 1024),
  /** Federation: representations one `_entities` request may ask for (a gateway sends one per entity it needs). */
  MAX_ENTITY_REPRESENTATIONS: positiveInt.default(100),
  /** HTTP: time to receive a request's headers, and its whole body (uploads get HTTP_UPLOAD_TIMEOUT_MS). */
  HTTP_HEADERS_TIMEOUT_MS: positiveInt.default(15_000),
  HTTP_REQUEST_TIMEOUT_MS: positiveInt.default(60_000),
  /** Time to receive a whole multipart upload (MAX_UPLOAD_REQUEST_BYTES): 64 MiB in 10 min is about 110 KB/s. */
  HTTP_UPLOAD_TIMEOUT_MS: positiveInt.default(10 * 60_000),
  /** How long an idle keep-alive connection stays open; above a load balancer's idle timeout when behind one. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: positiveInt.default(5_000),
  /**
   * Trusted documents: false turns on allowlist mode, where only the documents of the project's
   * own manifests (and TRUSTED_DOCUMENTS) run, sent by their documentId; query text is refused,
   * introspection excepted. True: both ids and text run.
   */
  ALLOW_ARBITRARY_OPERATIONS: z.stringbool().default(true),
  /** More manifests of trusted documents (JSON objects of document id to text), comma-separated paths. */
  TRUSTED_DOCUMENTS: optional(z.string().min(1)),
  /** When set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. Unset: /metrics is open. */
  METRICS_TOKEN: optional(z.string().min(16)),
  /** Uploads being received at once, in one process and per API key; more are refused (429) before their body is read. */
  MAX_CONCURRENT_UPLOADS: positiveInt.default(8),
  MAX_CONCURRENT_UPLOADS_PER_KEY: positiveInt.default(2),
  /** Webhooks: tries per delivery, the first retry's delay (doubling after, capped at an hour), and each POST's timeout. */
  WEBHOOK_MAX_ATTEMPTS: positiveInt.default(8),
  WEBHOOK_RETRY_DELAY_SECONDS: positiveInt.default(10),
  WEBHOOK_TIMEOUT_MS: positiveInt.default(10_000),
  /**
   * Let callbackUrls reach loopback, private, link-local and other internal addresses. Off: such
   * URLs are refused, and deliveries connect to public addresses only (no SSRF into the network
   * the server runs in). For tests and local setups whose receivers run beside the server.
   */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z.stringbool().default(false),
  /** On SIGTERM, how long running steps may take to finish before the process exits anyway. */
  SHUTDOWN_GRACE_MS: positiveInt.default(20_000),
  /** How often a worker looks for unfinished generations whose next step was lost. */
  SWEEP_INTERVAL_MS: positiveInt.default(60_000),
  /** An unfinished generation unchanged for this long counts as stalled (polls touch it). */
  STALL_AFTER_MS: positiveInt.default(5 * 60_000),
  /** Stored videos of generations finished more than this many days ago are removed (the rows stay). Unset: kept forever. */
  VIDEO_RETENTION_DAYS: optional(z.coerce.number().positive()),
  /** How often a worker removes expired videos, when VIDEO_RETENTION_DAYS is set. */
  VIDEO_RETENTION_SWEEP_INTERVAL_MS: positiveInt.default(60 * 60_000),
  /** Whether `npm start` also works the job queue; false for API-only instances beside `npm run worker`. */
  WORKER_ENABLED: z.stringbool().default(true),
  /** Jobs one process works on at once. Polling jobs are short, so this can be generous. */
  WORKER_CONCURRENCY: positiveInt.default(8),
  /** Simulator timings, used only when SEGMIND_API_KEY is unset. */
  SIMULATOR_QUEUE_MS: z.coerce.number().int().min(0).default(500),
  SIMULATOR_PROCESSING_MS: z.coerce.number().int().min(0).default(2500),
  /** OpenTelemetry: traces go to this OTLP/HTTP endpoint (e.g. http://collector:4318) when set. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(z.url({ protocol: /^https?$/ })),
  OTEL_SERVICE_NAME: z.string().min(1).default('extendql'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
});

export type Env = z.infer<typeof EnvSchema>;

/** Every environment variable extendql reads, e.g. for checking deployment files against it. */
export const ENV_NAMES = Object.keys(EnvSchema.shape) as (keyof Env)[];

export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** Empty, or ends with `/`. */
  prefix: string;
  /** Undefined: the SDK's default credential chain. */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
}

export interface Config {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  segmind: { apiKey: string | undefined; baseUrl: string };
  publicBaseUrl: string | undefined;
  host: string;
  port: number;
  dataDir: string;
  storageDir: string;
  /** Set when videos go to S3-compatible object storage instead of storageDir. */
  s3: S3Config | null;
  poll: { initialMs: number; maxMs: number; backoff: number };
  upstreamTimeoutMs: number;
  upstreamCircuit: { threshold: number; cooldownMs: number };
  generationDeadlineMs: number;
  maxVideoBytes: number;
  workerConcurrency: number;
  workerEnabled: boolean;
  sweep: { intervalMs: number; stallAfterMs: number };
  /** Null: videos are kept forever. */
  retention: { videoDays: number; intervalMs: number } | null;
  jobSuperviseIntervalSeconds: number;
  shutdownGraceMs: number;
  maxRequestBytes: number;
  maxUploadRequestBytes: number;
  maxEntityRepresentations: number;
  http: { headersTimeoutMs: number; requestTimeoutMs: number; uploadTimeoutMs: number; keepAliveTimeoutMs: number };
  /** Null: /metrics needs no credentials. */
  metricsToken: string | null;
  /** `allowArbitraryOperations` false: allowlist mode. `manifests`: absolute paths from TRUSTED_DOCUMENTS. */
  trustedDocuments: { allowArbitraryOperations: boolean; manifests: string[] };
  uploads: { maxConcurrent: number; maxConcurrentPerKey: number };
  webhooks: { maxAttempts: number; retryDelaySeconds: number; timeoutMs: number; allowPrivateNetworks: boolean };
  keyLimits: { perMinute: number; concurrent: number; dailyBudgetUsd: number | null };
  maxSubscriptionsPerKey: number;
  /** Query answers kept per API key; ttlMs 0 is off. */
  responseCache: { ttlMs: number; maxEntries: number; maxBytes: number };
  simulator: { queueMs: number; processingMs: number };
  /** Null: no tracing. */
  telemetry: { endpoint: string; serviceName: string } | null;
  logLevel: Env['LOG_LEVEL'];
  production: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once. A wrong value stops the start with the variable's name. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.DATA_DIR);
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    segmind: { apiKey: e.SEGMIND_API_KEY, baseUrl: e.SEGMIND_BASE_URL.replace(/\/+$/, '') },
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    host: e.HOST,
    port: e.PORT,
    dataDir,
    storageDir: resolve(e.STORAGE_DIR ?? `${dataDir}/videos`),
    s3: s3Config(e),
    poll: { initialMs: e.POLL_INTERVAL_MS, maxMs: e.POLL_MAX_INTERVAL_MS, backoff: e.POLL_BACKOFF },
    upstreamTimeoutMs: e.UPSTREAM_TIMEOUT_MS,
    upstreamCircuit: { threshold: e.UPSTREAM_CIRCUIT_THRESHOLD, cooldownMs: e.UPSTREAM_CIRCUIT_COOLDOWN_MS },
    generationDeadlineMs: e.GENERATION_DEADLINE_MS,
    maxVideoBytes: e.MAX_VIDEO_BYTES,
    workerConcurrency: e.WORKER_CONCURRENCY,
    workerEnabled: e.WORKER_ENABLED,
    sweep: { intervalMs: e.SWEEP_INTERVAL_MS, stallAfterMs: Math.max(e.STALL_AFTER_MS, 2 * e.POLL_MAX_INTERVAL_MS) },
    retention: e.VIDEO_RETENTION_DAYS ? { videoDays: e.VIDEO_RETENTION_DAYS, intervalMs: e.VIDEO_RETENTION_SWEEP_INTERVAL_MS } : null,
    jobSuperviseIntervalSeconds: e.JOB_SUPERVISE_INTERVAL_SECONDS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    maxUploadRequestBytes: e.MAX_UPLOAD_REQUEST_BYTES,
    maxEntityRepresentations: e.MAX_ENTITY_REPRESENTATIONS,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      uploadTimeoutMs: Math.max(e.HTTP_UPLOAD_TIMEOUT_MS, e.HTTP_REQUEST_TIMEOUT_MS),
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    },
    metricsToken: e.METRICS_TOKEN ?? null,
    trustedDocuments: {
      allowArbitraryOperations: e.ALLOW_ARBITRARY_OPERATIONS,
      manifests: (e.TRUSTED_DOCUMENTS ?? '')
        .split(',')
        .map((path) => path.trim())
        .filter(Boolean)
        .map((path) => resolve(path)),
    },
    uploads: { maxConcurrent: e.MAX_CONCURRENT_UPLOADS, maxConcurrentPerKey: e.MAX_CONCURRENT_UPLOADS_PER_KEY },
    webhooks: {
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      retryDelaySeconds: e.WEBHOOK_RETRY_DELAY_SECONDS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
    },
    keyLimits: { perMinute: e.RATE_LIMIT_PER_MINUTE, concurrent: e.MAX_CONCURRENT_PER_KEY, dailyBudgetUsd: e.DAILY_BUDGET_USD ?? null },
    maxSubscriptionsPerKey: e.MAX_SUBSCRIPTIONS_PER_KEY,
    responseCache: { ttlMs: e.RESPONSE_CACHE_TTL_MS, maxEntries: e.RESPONSE_CACHE_MAX_ENTRIES, maxBytes: e.RESPONSE_CACHE_MAX_BYTES },
    simulator: { queueMs: e.SIMULATOR_QUEUE_MS, processingMs: e.SIMULATOR_PROCESSING_MS },
    telemetry: e.OTEL_EXPORTER_OTLP_ENDPOINT ? { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME } : null,
    logLevel: e.LOG_LEVEL,
    production: e.NODE_ENV === 'production',
  };
}

function s3Config(e: Env): S3Config | null {
  if (!e.S3_BUCKET) {
    // Without a bucket these would be ignored silently and videos would land on local disk.
    const stray = (['S3_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_PREFIX'] as const).filter((name) => e[name] !== undefined);
    if (stray.length) throw new ConfigError(`Invalid configuration:\n  S3_BUCKET: required when ${stray.join(', ')} is set`);
    return null;
  }
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) {
    throw new ConfigError('Invalid configuration:\n  S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY: set both or neither');
  }
  const prefix = e.S3_PREFIX ?? '';
  return {
    bucket: e.S3_BUCKET,
    endpoint: e.S3_ENDPOINT,
    region: e.S3_REGION,
    forcePathStyle: e.S3_FORCE_PATH_STYLE ?? (e.S3_ENDPOINT !== undefined),
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
    credentials:
      e.S3_ACCESS_KEY_ID !== undefined && e.S3_SECRET_ACCESS_KEY !== undefined
        ? { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
        : undefined,
  };
}
