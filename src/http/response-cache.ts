import { createHash } from 'node:crypto';
import { createInMemoryCache, hashSHA256, useResponseCache, type Cache } from '@graphql-yoga/plugin-response-cache';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { ApiKeyIdentity } from '../auth/api-keys.ts';
import type { RequestContext } from '../context.ts';
import type { GenerationPubSub } from '../start/core.ts';

/** The entity every cached answer of one key is filed under, so that the key's answers go together. */
const KEY_ENTITY = 'ResponseCacheApiKey';

/** A key's tag in cache keys and ETags: a hash of its id, so neither the key nor its id is shown. */
function keyTag(apiKeyId: string | null | undefined): string {
  return apiKeyId ? createHash('sha256').update(apiKeyId).digest('hex').slice(0, 24) : 'public';
}

export interface ResponseCacheOptions {
  ttlMs: number;
  maxEntries: number;
  /** The identity behind a request's x-api-key (null when it has none, or an unknown or revoked one). */
  identify(request: Request): Promise<ApiKeyIdentity | null>;
  pubsub: GenerationPubSub;
}

/**
 * Query answers kept in memory per API key (RESPONSE_CACHE_TTL_MS), for repeated reads such as a
 * dashboard re-reading its history page. Answers are cached per key (the key's identity is part of
 * every cache key) and only without errors. Everything a key has cached is dropped when one of its
 * generations changes (the apiKeyChanged event, heard from every process with REDIS_URL) and when
 * it runs a mutation. Answers that contain elapsedSeconds (it moves with the clock) and
 * introspection are not cached.
 */
export function responseCachePlugins(options: ResponseCacheOptions): Plugin[] {
  const store = createInMemoryCache({ max: options.maxEntries });
  // Every answer is filed under its key too, read back from the tag that starts its cache key.
  const cache: Cache = {
    get: (id) => store.get(id),
    set: (id, data, entities, ttl) => store.set(id, data, [...entities, { typename: KEY_ENTITY, id: id.slice(0, id.indexOf('.')) }], ttl),
    invalidate: (entities) => store.invalidate(entities),
  };
  // Each key's version is part of its cache keys, and a change moves it on: an answer that was
  // read before a change and finishes after it is filed under the old version, where no later
  // request looks (dropping entries alone would let that late answer in after the drop).
  let clock = 0;
  let floor = 0;
  const versions = new Map<string, number>();
  const versionOf = (tag: string) => versions.get(tag) ?? floor;
  const forget = (apiKeyId: string) => {
    const tag = keyTag(apiKeyId);
    // Bounded: when full, every key moves on at once (the floor), and the map starts again.
    if (versions.size >= options.maxEntries) {
      versions.clear();
      floor = ++clock;
    }
    versions.set(tag, ++clock);
    store.invalidate([{ typename: KEY_ENTITY, id: tag }]);
  };
  const changes = options.pubsub.subscribe('apiKeyChanged')[Symbol.asyncIterator]();
  void (async () => {
    for (let next = await changes.next(); !next.done; next = await changes.next()) forget(next.value);
  })();

  // Only requests that came through yoga's HTTP path (onRequest, then onParams, which the plugin
  // needs): graphql-ws operations run on the same plugins without them, and are never cached.
  const overHttp = new WeakSet<Request>();
  const cachePlugin = useResponseCache<RequestContext>({
    cache,
    enabled: (request) => overHttp.has(request),
    ttl: options.ttlMs,
    ttlPerSchemaCoordinate: { 'Generation.elapsedSeconds': 0 },
    session: async (request) => (await options.identify(request))?.id ?? null,
    // The key's tag first (the cache files the answer under it), its version, then what the plugin hashes by default.
    buildResponseCacheKey: async ({ documentString, operationName, variableValues, sessionId }) => {
      const tag = keyTag(sessionId);
      const hash = await hashSHA256([documentString, operationName ?? '', JSON.stringify(variableValues ?? {}), sessionId ?? ''].join('|'));
      return `${tag}.${versionOf(tag)}.${hash}`;
    },
    includeExtensionMetadata: false,
  });
  const lifecycle: Plugin<RequestContext> = {
    onRequest({ request }) {
      overHttp.add(request);
    },
    // A key's mutation drops its answers once it has run (a delete, say, sends no event).
    onExecute({ args }) {
      const key = args.contextValue.apiKey;
      if (!key || getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      return { onExecuteDone: () => forget(key.id) };
    },
    onDispose: async () => {
      await changes.return?.();
    },
  };
  // The lifecycle plugin first: its onRequest marks the request before the cache plugin looks.
  return [lifecycle as Plugin, cachePlugin];
}
