import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { authenticate, type ApiKeyIdentity } from '../auth/api-keys.ts';
import type { Config } from '../config.ts';
import type { RequestContext, ServerContext } from '../context.ts';
import { graphiqlOptions, renderGraphiQLPage } from '../graphiql.ts';
import type { Logger } from '../logger.ts';
import { SubscriptionSlots } from '../realtime/subscription-slots.ts';
import { schema } from '../schema/index.ts';
import type { Core } from '../start/core.ts';
import { useTracing } from '../telemetry.ts';
import { useEntityLimits } from './entities.ts';
import { streamingUploadsFor } from './multipart.ts';
import { NotReady, useReadiness } from './readiness.ts';
import { requestIdOf } from './request-id.ts';
import { responseCachePlugins } from './response-cache.ts';
import { DOCUMENT_ID_PARAM, type TrustedDocuments } from './trusted-documents.ts';
import { useRequestMetrics } from './request-metrics.ts';
import { MAX_OPERATION_COST, securityPlugins, useBodyLimit } from './security.ts';
import { maskedErrors, useMetricsToken, useStatusOnlyWithoutData, yogaLogging } from './yoga.ts';

export type GraphQLHandler = YogaServerInstance<ServerContext, RequestContext>;

/** The GraphQL endpoint (and GraphiQL, /metrics, /health): yoga with the schema and its plugins. */
export function createGraphQLHandler(config: Config, core: Core, trusted: TrustedDocuments): GraphQLHandler {
  const { logger, db, generations, pubsub, videoUrl } = core;
  const subscriptionSlots = new SubscriptionSlots(config.maxSubscriptionsPerKey);
  // One lookup per request, whether the response cache (for its session) or the context asks first.
  const identities = new WeakMap<Request, Promise<ApiKeyIdentity | null>>();
  const identify = (request: Request) => {
    let identity = identities.get(request);
    if (!identity) identities.set(request, (identity = authenticate(db, request.headers.get('x-api-key'))));
    return identity;
  };
  return createYoga<ServerContext, RequestContext>({
    schema,
    graphqlEndpoint: '/graphql',
    // Known once the port is bound; the page is rendered once per origin.
    graphiql: () => graphiqlOptions(core.origin.baseUrl),
    // The GraphiQL bundle is served from this server, not a CDN, so it works offline too.
    renderGraphiQL: renderGraphiQLPage,
    landingPage: false,
    maskedErrors,
    logging: yogaLogging(logger),
    context: async ({ request, req }) => ({
      log: logger.child({ reqId: requestIdOf(req) }),
      requestId: requestIdOf(req),
      apiKey: await identify(request),
      db,
      generations,
      videoUrl,
      generationEvents: (id: string) => pubsub.subscribe('generationUpdated', id),
      subscriptionSlots,
    }),
    batching: false,
    // Clients that send a trusted document's id instead of its text (see trusted-documents.ts).
    extraParamNames: [DOCUMENT_ID_PARAM],
    // Declared lengths are judged in bodyLimitExceeded (in the HTTP server) before yoga;
    // useBodyLimit counts chunked bodies.
    maxRequestBodySize: false,
    plugins: graphqlPlugins(config, core, trusted, identify),
  });
}

/**
 * The plugin stack, in order: limits first, then trusted documents, status, uploads, tracing,
 * metrics and readiness.
 */
function graphqlPlugins(config: Config, core: Core, trusted: TrustedDocuments, identify: (request: Request) => Promise<ApiKeyIdentity | null>): Plugin[] {
  const { ttlMs, maxEntries, maxBytes } = config.responseCache;
  return [
    ...securityPlugins(),
    // Turns a documentId into its text (or refuses text in allowlist mode) before anything reads the query.
    trusted.plugin(),
    // After the document is known: a cached answer for this key skips everything below (RESPONSE_CACHE_TTL_MS).
    ...(ttlMs > 0 ? responseCachePlugins({ ttlMs, maxEntries, maxBytes, identify, pubsub: core.pubsub, logger: core.logger }) : []),
    useEntityLimits({ maxRepresentations: config.maxEntityRepresentations, maxCost: MAX_OPERATION_COST }),
    useStatusOnlyWithoutData(),
    useBodyLimit(config.maxUploadRequestBytes),
    // Multipart (upload) requests: files go to disk as they arrive, never whole into memory.
    streamingUploadsFor(config, core.storage, (presented) => authenticate(core.db, presented)),
    useTracing((context) => (context as RequestContext).requestId),
    useMetricsToken(config.metricsToken),
    useRequestMetrics(core.metrics),
    useReadinessOf(core, core.logger),
  ];
}

/**
 * Ready when the database and the job queue answer, the upstream circuit is not open and Redis
 * (when configured) is connected. The job engine may still be starting once the server listens:
 * the queue is "starting" until then.
 */
function useReadinessOf(core: Core, logger: Logger): Plugin {
  const { db, queue, segmind, redis } = core;
  return useReadiness(
    [
      { name: 'database', check: () => db.$queryRaw`SELECT 1` },
      {
        name: 'queue',
        check: async () => {
          if (!queue.isStarted) throw new NotReady('starting');
          return queue.depth();
        },
      },
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
  );
}
