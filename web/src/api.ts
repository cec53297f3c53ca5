import { Client, CombinedError, fetchExchange, makeOperation, mapExchange, subscriptionExchange, type AnyVariables, type TypedDocumentNode } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';

/** The studio's connection to the public GraphQL API: HTTP for queries and mutations (uploads
 * as multipart), one WebSocket (graphql-ws) shared by every live subscription. */
export interface Api {
  client: Client;
  query<R, V extends AnyVariables>(document: TypedDocumentNode<R, V>, variables: V): Promise<R>;
  mutate<R, V extends AnyVariables>(document: TypedDocumentNode<R, V>, variables: V): Promise<R>;
  close(): void;
}

/** A request that failed as a whole: the network, an unknown key, or an error the server masked. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function apiError(error: CombinedError): ApiError {
  const first = error.graphQLErrors[0];
  if (first) return new ApiError(first.message, typeof first.extensions.code === 'string' ? first.extensions.code : undefined);
  const status = (error.response as Response | undefined)?.status;
  if (status === 401) return new ApiError('This API key was not accepted.', 'UNAUTHENTICATED');
  return new ApiError(error.networkError ? `The server could not be reached (${error.networkError.message}).` : error.message, undefined);
}

/** The WebSocket endpoint beside the HTTP one: ws(s)://<this origin>/graphql. */
function wsUrl(endpoint: string): string {
  const url = new URL(endpoint, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

function subscriptionsOver(ws: WsClient) {
  return subscriptionExchange({
    forwardSubscription(request) {
      const operation = { ...request, query: request.query ?? '' };
      return {
        subscribe(sink) {
          return { unsubscribe: ws.subscribe(operation, sink) };
        },
      };
    },
  });
}

/**
 * Trusted documents: every operation of the studio is sent as the id codegen gave it (the
 * document's `__meta__.hash`, in Apollo's `extensions.persistedQuery`), never as text, over HTTP,
 * multipart uploads and the WebSocket alike. A server in allowlist mode
 * (ALLOW_ARBITRARY_OPERATIONS=false) runs nothing else, and knows these ids from
 * web/src/gql/persisted-documents.json.
 */
const trustedDocuments = mapExchange({
  onOperation(operation) {
    const hash = (operation.query as { __meta__?: { hash?: unknown } }).__meta__?.hash;
    if (typeof hash !== 'string' || operation.kind === 'teardown') return operation;
    const persistedQuery = { version: 1 as const, sha256Hash: hash.replace(/^sha256:/, '') };
    return makeOperation(operation.kind, { ...operation, extensions: { ...operation.extensions, persistedQuery } }, operation.context);
  },
});

export function createApi(key: string, endpoint = '/graphql'): Api {
  const ws = createWsClient({ url: wsUrl(endpoint), connectionParams: { 'x-api-key': key }, lazy: true, retryAttempts: 20 });
  const client = new Client({
    url: endpoint,
    // POST always: the key travels in a header, and nothing here is cacheable by URL.
    preferGetMethod: false,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: { 'x-api-key': key } }),
    exchanges: [trustedDocuments, fetchExchange, subscriptionsOver(ws)],
  });
  const unwrap = <R>(result: { data?: R; error?: CombinedError }): R => {
    if (result.error && !result.data) throw apiError(result.error);
    if (result.data === undefined) throw new ApiError('The server sent no data.', undefined);
    return result.data;
  };
  return {
    client,
    query: async (document, variables) => unwrap(await client.query(document, variables).toPromise()),
    mutate: async (document, variables) => unwrap(await client.mutation(document, variables).toPromise()),
    close: () => void ws.dispose(),
  };
}
