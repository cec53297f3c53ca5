import type { IncomingMessage, ServerResponse } from 'node:http';
import type { YogaInitialContext } from 'graphql-yoga';
import type { ApiKeyIdentity } from './auth/api-keys.ts';
import type { Db } from './db/client.ts';
import type { Logger } from './logger.ts';
import type { GenerationService } from './generations/service.ts';
import type { SubscriptionSlots } from './realtime/subscription-slots.ts';

/** Per-request context: who is asking, and the services resolvers delegate to. */
export interface RequestContext {
  /** Log lines carry the request's id (reqId), as in the access log. */
  log: Logger;
  /** The request's id (x-request-id), when it came over HTTP. */
  requestId?: string;
  apiKey: ApiKeyIdentity | null;
  db: Db;
  generations: GenerationService;
  /** Absolute URL of a stored video. */
  videoUrl(videoId: string): string;
  /** Yields each time the generation changes; ends when the subscriber goes away. */
  generationEvents(generationId: string): AsyncIterable<string>;
  /** Open subscriptions per key in this process (MAX_SUBSCRIPTIONS_PER_KEY). */
  subscriptionSlots: SubscriptionSlots;
}

export type Context = YogaInitialContext & RequestContext;

/** The context of a field that requires an API key (t.withAuth({ apiKey: true })). */
export type AuthenticatedContext = Context & { apiKey: ApiKeyIdentity };

/** What the Node server hands yoga with each request (absent for WebSocket operations). */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
}
