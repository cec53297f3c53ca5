import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Context as SocketContext, SubscribePayload } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { ApiKeyIdentity } from '../auth/api-keys.ts';
import type { RequestContext, ServerContext } from '../context.ts';
import type { Logger } from '../logger.ts';
import { isIntrospection } from './introspection.ts';
import type { TrustedDocuments } from './trusted-documents.ts';

export interface WebSocketOptions {
  /** Largest message read (MAX_REQUEST_BYTES, as for HTTP bodies); a larger one closes the socket with 1009. */
  maxPayloadBytes: number;
  authenticate(presented: string | null): Promise<ApiKeyIdentity | null>;
  /** The trusted documents, and whether text may run, as for HTTP. */
  trusted: TrustedDocuments;
  logger: Logger;
}

type Yoga = YogaServerInstance<ServerContext, RequestContext>;
type Ctx = SocketContext<Record<string, unknown> | undefined, Extra>;

/**
 * GraphQL over WebSocket (graphql-ws) on the GraphQL path, through the same yoga pipeline as HTTP:
 * same schema, plugins, limits and context. Browsers cannot set headers on a WebSocket, so the
 * API key may also come as the `x-api-key` connection parameter.
 *
 * A bad operation (syntax, validation, an armor limit, no key) gets an `error` message for its own
 * id; the socket and its other subscriptions stay open.
 */
export function attachWebSocket(server: Server, yoga: Yoga, options: WebSocketOptions): () => Promise<void> {
  // maxPayload is enforced by ws as frames arrive, so an oversize message is never buffered whole.
  const wsServer = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: options.maxPayloadBytes });
  const disposable = useServer(
    {
      // Close reasons never carry error text.
      isProd: true,
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      // A key that is presented but unknown or revoked ends the connection (4403, which clients do
      // not retry); without a key, only introspection is answered (as over HTTP).
      onConnect: async (ctx) => {
        const key = presentedKey(ctx);
        return key === null || (await options.authenticate(key)) !== null;
      },
      onSubscribe: async (ctx, _id, payload) => {
        try {
          return await prepare(yoga, ctx, payload, options.trusted);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          options.logger.error({ err: error }, 'a WebSocket operation could not be prepared');
          return [new GraphQLError('Unexpected error.')];
        }
      },
    },
    wsServer,
  );
  // A socket's errors are its client's doing (a message over maxPayload, a malformed frame), and
  // ws has already closed the socket with 1009 or 1002. graphql-ws would print each to stderr with
  // its stack as an "internal error": logged here instead, as one line. Registered after
  // useServer's own listener, so that its handler is the one replaced.
  wsServer.on('connection', (socket) => {
    socket.removeAllListeners('error');
    socket.on('error', (error: Error & { code?: string }) => {
      options.logger.info({ err: error.message, code: error.code }, 'a WebSocket client broke the protocol; its socket is closed');
      if (socket.readyState === socket.OPEN) socket.close(1011);
    });
  });
  return async () => {
    await disposable.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  };
}

function presentedKey(ctx: Ctx): string | null {
  const fromParams = ctx.connectionParams?.['x-api-key'];
  const fromHeader = ctx.extra.request.headers['x-api-key'];
  return typeof fromParams === 'string' ? fromParams : typeof fromHeader === 'string' ? fromHeader : null;
}

/**
 * Resolves (trusted documents), parses, authenticates and validates one operation with yoga's
 * enveloped functions. Errors, thrown (unknown document ids, text in allowlist mode, parse errors,
 * armor limits) or returned (validation), become the operation's own error.
 */
async function prepare(yoga: Yoga, ctx: Ctx, payload: SubscribePayload, trusted: TrustedDocuments): Promise<ExecutionArgs | readonly GraphQLError[]> {
  const key = presentedKey(ctx);
  const request = new Request(`http://localhost${yoga.graphqlEndpoint}`, { headers: key ? { 'x-api-key': key } : {} });
  // A trusted document's id (sent with "" as the query, which graphql-ws requires) becomes its text.
  const query = trusted.queryFor(payload, request);
  const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ request, params: { ...payload, query } } as never);
  const document = parse(query);
  const contextValue = (await contextFactory()) as RequestContext;
  if (!contextValue.apiKey && !isIntrospection(document, payload.operationName)) {
    return [new GraphQLError('A valid API key is required: send it as the x-api-key connection parameter', { extensions: { code: 'UNAUTHENTICATED' } })];
  }
  const errors = validate(schema, document);
  if (errors.length) return errors;
  return {
    schema,
    operationName: payload.operationName,
    document,
    variableValues: payload.variables,
    contextValue,
    rootValue: { execute, subscribe },
  };
}
