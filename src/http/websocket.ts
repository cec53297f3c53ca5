import type { Server } from 'node:http';
import type { YogaServerInstance } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { RequestContext, ServerContext } from '../context.js';

/**
 * GraphQL over WebSocket (graphql-ws) on the GraphQL path, through the same yoga pipeline as HTTP:
 * same schema, plugins, limits and context. Browsers cannot set headers on a WebSocket, so the
 * API key may also come as the `x-api-key` connection parameter.
 */
export function attachWebSocket(server: Server, yoga: YogaServerInstance<ServerContext, RequestContext>): () => Promise<void> {
  const wsServer = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const fromParams = ctx.connectionParams?.['x-api-key'];
        const fromHeader = ctx.extra.request.headers['x-api-key'];
        const apiKey = typeof fromParams === 'string' ? fromParams : typeof fromHeader === 'string' ? fromHeader : '';
        const request = new Request(`http://localhost${yoga.graphqlEndpoint}`, { headers: apiKey ? { 'x-api-key': apiKey } : {} });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ request, params: payload } as never);
        const args = {
          schema,
          operationName: payload.operationName,
          document: parse(payload.query),
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        return errors.length ? errors : args;
      },
    },
    wsServer,
  );
  return async () => {
    await disposable.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
  };
}
