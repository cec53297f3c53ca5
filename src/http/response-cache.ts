import { createHash } from 'node:crypto';
import { createInMemoryCache, hashSHA256, useResponseCache, type Cache } from '@graphql-yoga/plugin-response-cache';
import { getOperationAST, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { ApiKeyIdentity } from '../auth/api-keys.ts';
import type { RequestContext } from '../context.ts';
import type { Logger } from '../logger.ts';
import type { GenerationPubSub } from '../start/core.ts';

/** The entity every cached answer of one key is filed under, so that the key's answers go together. */
const KEY_ENTITY = 'ResponseCacheApiKey';
/** Each answer is also an entity of its own, so that the byte budget can drop it alone. */
const ANSWER_ENTITY = 'ResponseCacheAnswer';

/** A key's tag in cache keys: a hash of its id, so neither the key nor its id is kept or shown. */
function keyTag(apiKeyId: string | null | undefined): string {
  return apiKeyId ? createHash('sha256').update(apiKeyId).digest('hex').slice(0, 24) : 'public';
}

export interface ResponseCacheOptions {
  ttlMs: number;
  maxEntries: number;
  /** Bytes of answers (as JSON) kept at most; one answer larger than a sixteenth of it is not kept. */
  maxBytes: number;
  /** The identity behind a request's x-api-key (null when it has none, or an unknown or revoked one). */
  identify(request: Request): Promise<ApiKeyIdentity | null>;
  pubsub: GenerationPubSub;
  logger: Logger;
}

/**
 * Each key's version is part of its cache keys, and a change moves it on: an answer read before
 * a change and finished after it is filed under the old version, where no later request looks
 * (dropping entries alone would let that late answer in after the drop). Bounded: when full,
 * every key moves on at once (the floor), and the map starts again.
 */
function keyVersions(maxKeys: number) {
  let clock = 0;
  let floor = 0;
  const versions = new Map<string, number>();
  return {
    of: (tag: string) => versions.get(tag) ?? floor,
    moveOn(tag: string) {
      if (versions.size >= maxKeys) {
        versions.clear();
        floor = ++clock;
      }
      versions.set(tag, ++clock);
    },
  };
}

/**
 * The plugin's in-memory cache (entries by count, with their entities), with every answer filed
 * under its key and a byte budget on top: the oldest answers go first when it is exceeded.
 */
function budgetedCache(maxEntries: number, maxBytes: number): Cache {
  const store = createInMemoryCache({ max: maxEntries });
  const sizes = new Map<string, number>(); // oldest first
  let bytes = 0;
  const drop = (id: string) => {
    bytes -= sizes.get(id) ?? 0;
    sizes.delete(id);
    void store.invalidate([{ typename: ANSWER_ENTITY, id }]);
  };
  return {
    get: (id) => store.get(id),
    set(id, data: ExecutionResult, entities, ttl) {
      const size = JSON.stringify(data).length;
      if (size > maxBytes / 16) return;
      if (sizes.has(id)) drop(id);
      while (sizes.size > 0 && (bytes + size > maxBytes || sizes.size >= maxEntries)) drop(sizes.keys().next().value!);
      sizes.set(id, size);
      bytes += size;
      const filed = [{ typename: KEY_ENTITY, id: id.slice(0, id.indexOf('.')) }, { typename: ANSWER_ENTITY, id }];
      return store.set(id, data, [...entities, ...filed], ttl);
    },
    invalidate: (entities) => store.invalidate(entities),
  };
}

/**
 * Query answers kept in memory per API key (RESPONSE_CACHE_TTL_MS), for repeated reads such as a
 * dashboard re-reading its history page. Answers are cached per key (the key's identity is part of
 * every cache key) and only without errors. Everything a key has cached is dropped when one of its
 * generations changes or it runs a mutation (the apiKeyChanged event, heard by every process with
 * REDIS_URL). Answers with elapsedSeconds (it moves with the clock), introspection and graphql-ws
 * operations are not cached. The plugin's ETag and If-None-Match handling is not used: a 304 would
 * be answered before the key, the operation or the key's version were looked at.
 */
export function responseCachePlugins(options: ResponseCacheOptions): Plugin[] {
  const cache = budgetedCache(options.maxEntries, options.maxBytes);
  const versions = keyVersions(options.maxEntries);
  const forget = (apiKeyId: string) => {
    const tag = keyTag(apiKeyId);
    versions.moveOn(tag);
    void cache.invalidate([{ typename: KEY_ENTITY, id: tag }]);
  };
  const changes = options.pubsub.subscribe('apiKeyChanged')[Symbol.asyncIterator]();
  void (async () => {
    for (let next = await changes.next(); !next.done; next = await changes.next()) {
      if (typeof next.value === 'string') forget(next.value);
      else options.logger.warn('response cache: an apiKeyChanged event without a key id was ignored');
    }
  })().catch((error: unknown) => options.logger.error({ err: error }, 'response cache: no longer hears changes'));

  // Only requests that reached yoga's onParams (which the plugin needs): not graphql-ws operations,
  // and not the plugin's own If-None-Match shortcut in onRequest.
  const withParams = new WeakSet<Request>();
  const cachePlugin = useResponseCache<RequestContext>({
    cache,
    enabled: (request) => withParams.has(request),
    ttl: options.ttlMs,
    ttlPerSchemaCoordinate: { 'Generation.elapsedSeconds': 0, 'Query.__type': 0 },
    // Per-key forget covers mutations; the plugin's own would drop every key's answers by type.
    invalidateViaMutation: false,
    session: async (request) => (await options.identify(request))?.id ?? null,
    // The key's tag first (the cache files the answer under it), its version, then what the plugin hashes by default.
    buildResponseCacheKey: async ({ documentString, operationName, variableValues, sessionId }) => {
      const tag = keyTag(sessionId);
      const hash = await hashSHA256([documentString, operationName ?? '', JSON.stringify(variableValues ?? {}), sessionId ?? ''].join('|'));
      return `${tag}.${versions.of(tag)}.${hash}`;
    },
    includeExtensionMetadata: false,
  });
  const lifecycle: Plugin<RequestContext> = {
    onParams({ request }) {
      withParams.add(request);
    },
    // A key's mutation drops its answers here at once, and in every other process through the
    // event (a delete, say, sends no generation event of its own).
    onExecute({ args }) {
      const key = args.contextValue.apiKey;
      if (!key || getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      return {
        onExecuteDone: () => {
          forget(key.id);
          options.pubsub.publish('apiKeyChanged', key.id);
        },
      };
    },
    onResponse({ response }) {
      response.headers.delete('etag');
      response.headers.delete('last-modified');
    },
    onDispose: async () => {
      await changes.return?.();
    },
  };
  // The lifecycle plugin first: its onParams marks the request before the cache plugin looks.
  return [lifecycle as Plugin, cachePlugin];
}
