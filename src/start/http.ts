import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticate } from '../auth/api-keys.ts';
import type { Config } from '../config.ts';
import { sourceReachProblem } from '../generations/source-links.ts';
import { createGraphQLHandler, type GraphQLHandler } from '../http/graphql-handler.ts';
import { trackRequest } from '../http/request-id.ts';
import { createSampleHandler } from '../http/samples.ts';
import { bodyLimitExceeded, isMultipart } from '../http/security.ts';
import { createStudioHandler } from '../http/studio.ts';
import { limitBodyTime, serverTimeouts } from '../http/timeouts.ts';
import { createVideoHandler } from '../http/videos.ts';
import { loadTrustedDocuments } from '../http/trusted-documents.ts';
import { attachWebSocket } from '../http/websocket.ts';
import type { Lifecycle } from '../lifecycle.ts';
import type { Core } from './core.ts';

export interface Http {
  url: string;
  publicBaseUrl: string;
  server: Server;
  yoga: GraphQLHandler;
}

/** Serves HTTP (videos, samples, GraphQL) and WebSockets, and fixes the public base URL. */
export async function startHttp(config: Config, core: Core, lifecycle: Lifecycle): Promise<Http> {
  const { logger, db } = core;
  const trusted = await loadTrustedDocuments(config.trustedDocuments, logger);
  const yoga = createGraphQLHandler(config, core, trusted);
  const server = createServer(serverTimeouts(config.http), routes(config, core, yoga));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  lifecycle.add(
    'http server',
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  lifecycle.add(
    'websocket server',
    attachWebSocket(server, yoga, { maxPayloadBytes: config.maxRequestBytes, authenticate: (key) => authenticate(db, key), trusted, logger }),
  );
  const { port } = server.address() as AddressInfo;
  const localHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${localHost}:${port}`;
  const publicBaseUrl = settlePublicOrigin(config, core, url);
  lifecycle.add('graphql', async () => yoga.dispose());

  logger.info({ url: `${url}/graphql`, publicBaseUrl, simulator: core.simulator !== null }, 'extendql is listening');
  return { url, publicBaseUrl, server, yoga };
}

/** The request listener: /videos, /samples, the studio at /, and GraphQL within its body limits and time. */
function routes(config: Config, core: Core, yoga: GraphQLHandler): Parameters<typeof createServer>[1] {
  const { storage, db, logger } = core;
  const serveVideo = createVideoHandler({
    storage,
    // Generated videos, then uploaded sources (both ids are random and unguessable).
    lookup: async (id) => {
      const select = { storageKey: true, byteSize: true, sha256: true, contentType: true } as const;
      return (await db.video.findUnique({ where: { id }, select })) ?? (await db.sourceUpload.findUnique({ where: { id }, select }));
    },
  });
  // The examples' source clip: made now when simulating (a newcomer's first start), else when first asked for.
  const samples = createSampleHandler(config.dataDir, { prepareNow: core.simulator !== null, logger });
  const studio = createStudioHandler();
  return (req, res) => {
    trackRequest(req, res, logger);
    if (req.url?.startsWith('/videos/')) void serveVideo(req, res);
    else if (req.url?.startsWith('/samples/')) void samples.handle(req, res);
    else if (studio.serves(req)) void studio.handle(req, res);
    else if (!bodyLimitExceeded(req, res, isMultipart(req) ? config.maxUploadRequestBytes : config.maxRequestBytes)) {
      if (!isMultipart(req)) limitBodyTime(req, res, config.http.requestTimeoutMs);
      void yoga.handle(req, res);
    }
  };
}

/**
 * The public origin defaults to where the server listens (known only once the port is bound);
 * warns when Segmind could not reach source links made on it.
 */
function settlePublicOrigin(config: Config, core: Core, url: string): string {
  const { origin, segmindUrl, logger } = core;
  origin.baseUrl ||= url;
  origin.sourceProblem = sourceReachProblem(config, segmindUrl, origin.baseUrl);
  if (origin.sourceProblem) logger.warn({ publicBaseUrl: origin.baseUrl, segmind: new URL(segmindUrl).origin }, origin.sourceProblem.detail);
  return origin.baseUrl;
}
