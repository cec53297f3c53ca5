import { createHash } from 'node:crypto';
import { createInMemoryCache, hashSHA256, useResponseCache, type Cache } from '@graphql-yoga/plugin-response-cache';
import { getOperationAST, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { ApiKeyIdentity } from '../auth/api-keys.ts';
import type { RequestContext } from '../context.ts';
import type { Logger } from '../logger.ts';
import type { GenerationPubSub } from '../start/core.ts';

/** Each answer is an entity of its own, so that one answer can be dropped alone. */
const ANSWER_ENTITY = 'ResponseCacheAnswer';
/** Keys whose version is remembered; past it, every key moves on at once. */
const MAX_KEY_VERSIONS = 100_000;

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
  const moveAllOn = () => {
    versions.clear();
    floor = ++clock;
  };
  return {
    of: (tag: string) => versions.get(tag) ?? floor,
    moveOn(tag: string) {
      if (versions.size >= maxKeys) moveAllOn();
      versions.set(tag, ++clock);
    },
    moveAllOn,
  };
}

type KeyVersions = ReturnType<typeof keyVersions>;

/**
 * The plugin's in-memory cache, with what it keeps accounted here: by key (to drop a key's
 * answers), by bytes (JSON) and by count, oldest first, expired ones before the rest. An answer
 * whose key has moved on since it was read is not kept, and neither is one over a sixteenth of
 * the bytes. Ids are `<key tag>.<version>.<hash>` (buildResponseCacheKey).
 */
function keyedAnswers(limits: { maxEntries: number; maxBytes: number }, versions: KeyVersions) {
  const store = createInMemoryCache({ max: limits.maxEntries });
  const kept = new Map<string, { size: number; expiresAt: number }>(); // oldest first
  const byKey = new Map<string, Set<string>>();
  let bytes = 0;
  const tagOf = (id: string) => id.slice(0, id.indexOf('.'));
  const untrack = (id: string) => {
    const entry = kept.get(id);
    if (!entry) return;
    bytes -= entry.size;
    kept.delete(id);
    const ids = byKey.get(tagOf(id));
    ids?.delete(id);
    if (ids?.size === 0) byKey.delete(tagOf(id));
  };
  const drop = (id: string) => {
    untrack(id);
    void store.invalidate([{ typename: ANSWER_ENTITY, id }]);
  };
  const cache: Cache = {
    get(id) {
      const answer = store.get(id);
      if (answer == null) untrack(id); // expired there
      return answer;
    },
    set(id, data: ExecutionResult, entities, ttl) {
      const [tag = '', version] = id.split('.', 2);
      if (Number(version) !== versions.of(tag)) return;
      const size = JSON.stringify(data).length;
      if (size > limits.maxBytes / 16) return;
      drop(id);
      const now = Date.now();
      for (const [old, entry] of kept) {
        if (entry.expiresAt > now && bytes + size <= limits.maxBytes && kept.size < limits.maxEntries) break;
        drop(old);
      }
      kept.set(id, { size, expiresAt: now + ttl });
      bytes += size;
      byKey.set(tag, (byKey.get(tag) ?? new Set()).add(id));
      return store.set(id, data, [...entities, { typename: ANSWER_ENTITY, id }], ttl);
    },
    invalidate: (entities) => store.invalidate(entities),
  };
  return {
    cache,
    forgetKey: (tag: string) => [...(byKey.get(tag) ?? [])].forEach(drop),
    forgetAll: () => [...kept.keys()].forEach(drop),
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
  const versions = keyVersions(MAX_KEY_VERSIONS);
  const answers = keyedAnswers(options, versions);
  const forget = (apiKeyId: string) => {
    const tag = keyTag(apiKeyId);
    versions.moveOn(tag);
    answers.forgetKey(tag);
  };
  const changes = options.pubsub.subscribe('apiKeyChanged')[Symbol.asyncIterator]();
  void (async () => {
    for (let next = await changes.next(); !next.done; next = await changes.next()) {
      if (typeof next.value === 'string') forget(next.value);
      else {
        // Redis is back after an outage (its event target says so without a key): whatever
        // changed meanwhile was not heard, so every answer goes.
        versions.moveAllOn();
        answers.forgetAll();
      }
    }
  })().catch((error: unknown) => options.logger.error({ err: error }, 'response cache: no longer hears changes'));

  // Only requests that reached yoga's onParams (which the plugin needs): not graphql-ws operations,
  // and not the plugin's own If-None-Match shortcut in onRequest.
  const withParams = new WeakSet<Request>();
  // Mutations are never cached (with invalidateViaMutation off, the plugin would treat them as queries).
  const mutations = new WeakSet<object>();
  const cachePlugin = useResponseCache<RequestContext>({
    cache: answers.cache,
    enabled: (request, context) => withParams.has(request) && !mutations.has(context),
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
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      mutations.add(args.contextValue);
      const key = args.contextValue.apiKey;
      if (!key) return;
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
