import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { createPubSub, createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { responseCachePlugins } from '../src/http/response-cache.ts';
import { revokeApiKey } from '../src/auth/api-keys.ts';
import { DeleteGenerationDocument, GenerationDocument, GenerationElapsedDocument, GenerationsDocument } from './gql/graphql.ts';
import { extendOk, startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

// RESPONSE_CACHE_TTL_MS: a key's repeated reads come from memory until one of its generations
// changes, it runs a mutation, or the TTL passes. Rows are changed behind the server's back here
// (no event): an answer that still shows the old value was served from the cache.
let stack: Stack;
let plain: Stack;

const create = (on: Stack, prompt: string, key?: string) => extendOk(on, prompt, {}, key);

/** Changes a prompt in the database without any event, as no code path of the server would. */
async function rewritePrompt(on: Stack, globalId: string, prompt: string) {
  const rawId = Buffer.from(globalId, 'base64').toString().split(':')[1]!;
  await on.app.db.generation.update({ where: { id: rawId }, data: { prompt } });
}

const prompts = async (on: Stack, key?: string) =>
  (await on.execute(GenerationsDocument, { first: 10 }, key)).data!.generations.edges.map((edge) => edge.node.prompt);

beforeAll(async () => {
  [stack, plain] = await Promise.all([startStack({ env: { RESPONSE_CACHE_TTL_MS: '60000' } }), startStack()]);
});
afterAll(async () => {
  await Promise.all([stack?.close(), plain?.close()]);
});

describe('response cache', () => {
  it('answers a repeated read from memory, without ETags, and only to the key that read it', async () => {
    const id = await create(stack, 'first prompt');
    await waitForTerminal(stack, id);
    expect(await prompts(stack)).toEqual(['first prompt']);
    await rewritePrompt(stack, id, 'changed behind its back');
    expect(await prompts(stack)).toEqual(['first prompt']);

    // No ETag, and an If-None-Match (say, a tag from elsewhere) is no shortcut past the key: the
    // plugin would answer it 304 before looking at the key, the operation or the key's version.
    const post = (headers: Record<string, string>, query: string) =>
      fetch(stack.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) });
    const page = 'query { generations(first: 10) { edges { node { prompt } } } }';
    const answered = await post({ 'x-api-key': stack.key }, page);
    expect(answered.headers.get('etag')).toBeNull();
    expect(answered.headers.get('last-modified')).toBeNull();
    const keyless = await post({ 'if-none-match': '*' }, page);
    expect(keyless.status).toBe(401);
    const metrics = await fetch(`${stack.app.url}/metrics`, { headers: { 'if-none-match': '*' } });
    expect(metrics.status).not.toBe(304);

    // Another key asking the same thing gets its own (empty) history, not the cached page.
    const other = await stack.newKey('other');
    expect(await prompts(stack, other)).toEqual([]);
  });

  it("drops a key's answers when one of its generations changes, and after its mutations", async () => {
    const id = await create(stack, 'watched');
    const before = (await stack.execute(GenerationDocument, { id })).data!.generation!;
    expect(before.status === 'SUCCEEDED').toBe(false);
    await waitForTerminal(stack, id);
    // The worker's events (same process here; every process with REDIS_URL) dropped the cached answer.
    expect((await stack.execute(GenerationDocument, { id })).data!.generation!.status).toBe('SUCCEEDED');

    // A new generation shows in the cached list at once: its mutation dropped the key's answers.
    const listed = await prompts(stack);
    const added = await create(stack, 'added');
    expect(await prompts(stack)).toEqual(['added', ...listed]);
    await waitForTerminal(stack, added);

    // A delete sends no event; the mutation itself drops the key's answers.
    expect((await stack.execute(DeleteGenerationDocument, { id: added })).data!.deleteGeneration.__typename).toBe('DeleteGenerationSuccess');
    expect(await prompts(stack)).toEqual(listed);
  });

  it('does not cache answers with elapsedSeconds, or with errors', async () => {
    const id = await create(stack, 'progress');
    await waitForTerminal(stack, id);
    expect((await stack.execute(GenerationElapsedDocument, { id })).data!.generation!.prompt).toBe('progress');
    await rewritePrompt(stack, id, 'progress, rewritten');
    expect((await stack.execute(GenerationElapsedDocument, { id })).data!.generation!.prompt).toBe('progress, rewritten');

    const keyless = await stack.execute(GenerationsDocument, { first: 10 }, null);
    expect(keyless.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await stack.execute(GenerationsDocument, { first: 10 }, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves nothing cached to a key once it is revoked', async () => {
    const key = await stack.newKey('to revoke');
    await create(stack, 'soon revoked', key);
    expect(await prompts(stack, key)).toEqual(['soon revoked']);
    const row = await stack.app.db.apiKey.findFirstOrThrow({ where: { name: 'to revoke' } });
    await revokeApiKey(stack.app.db, row.id);
    const after = await stack.execute(GenerationsDocument, { first: 10 }, key);
    expect(after.data).toBeNull();
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('answers queries over WebSocket from the database, never from the cache', async () => {
    const id = await create(stack, 'over a socket');
    await waitForTerminal(stack, id);
    const client = createClient({ url: stack.graphqlUrl.replace(/^http/, 'ws'), connectionParams: { 'x-api-key': stack.key }, lazy: true, retryAttempts: 0 });
    const read = async () => {
      const results: unknown[] = [];
      for await (const result of client.iterate({ query: print(GenerationDocument), variables: { id } })) results.push(result);
      return (results[0] as { data: { generation: { prompt: string } } }).data.generation.prompt;
    };
    try {
      expect(await read()).toBe('over a socket');
      await rewritePrompt(stack, id, 'over a socket, rewritten');
      expect(await read()).toBe('over a socket, rewritten');
    } finally {
      await client.dispose();
    }
  });

  it('is off by default: every read sees the database', async () => {
    const id = await create(plain, 'uncached');
    await waitForTerminal(plain, id);
    expect(await prompts(plain)).toEqual(['uncached']);
    await rewritePrompt(plain, id, 'seen at once');
    expect(await prompts(plain)).toEqual(['seen at once']);
  });
});

describe('response cache, a read that spans a change', () => {
  it('does not keep an answer read before a change that arrived while it ran', async () => {
    // A resolver that reads the value, then waits at a gate the test opens: the read spans the change.
    let value = 'old';
    let gate: Promise<void> | null = null;
    const schema = createSchema({
      typeDefs: 'type Query { value: String! }',
      resolvers: { Query: { value: async () => { const read = value; await gate; return read; } } },
    });
    const pubsub = createPubSub<{ generationUpdated: [string, string]; apiKeyChanged: [string] }>();
    const plugins = responseCachePlugins({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 20, identify: async () => ({ id: 'key-1', name: 'k' }), pubsub, logger: pino({ level: 'silent' }) });
    const yoga = createYoga({ schema, plugins });
    const ask = async () => ((await (await yoga.fetch('http://yoga/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ value }"}' })).json()) as { data: { value: string } }).data.value;
    try {
      let open!: () => void;
      gate = new Promise((resolve) => (open = resolve));
      const slow = ask(); // reads 'old', then waits
      await new Promise((resolve) => setTimeout(resolve, 50));
      value = 'new';
      pubsub.publish('apiKeyChanged', 'key-1');
      await new Promise((resolve) => setTimeout(resolve, 10));
      open();
      expect(await slow).toBe('old');
      gate = null;
      expect(await ask()).toBe('new');
      // and that answer is kept until the next change
      value = 'newer';
      expect(await ask()).toBe('new');
    } finally {
      await yoga.dispose();
    }
  });
});

describe('response cache, limits', () => {
  const schema = () => {
    const state = { value: 'a', big: 'x'.repeat(100_000), medium: 'y'.repeat(700), writes: 0 };
    return {
      state,
      schema: createSchema({
        typeDefs: 'type Query { value: String! big: String! medium: String! } type Mutation { touch: Int! }',
        resolvers: { Query: { value: () => state.value, big: () => state.big, medium: () => state.medium }, Mutation: { touch: () => ++state.writes } },
      }),
    };
  };
  const post = async (yoga: ReturnType<typeof createYoga>, query: string) => {
    const response = await yoga.fetch('http://yoga/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    return (await response.json()) as { data: Record<string, unknown> };
  };

  it('keeps no answer over a sixteenth of RESPONSE_CACHE_MAX_BYTES, and drops the oldest past it', async () => {
    const { state, schema: s } = schema();
    const pubsub = createPubSub<{ generationUpdated: [string, string]; apiKeyChanged: [string] }>();
    const plugins = responseCachePlugins({ ttlMs: 60_000, maxEntries: 100, maxBytes: 16 * 1024, identify: async () => ({ id: 'key-1', name: 'k' }), pubsub, logger: pino({ level: 'silent' }) });
    const yoga = createYoga({ schema: s, plugins });
    try {
      expect((await post(yoga, '{ big }')).data.big).toHaveLength(100_000);
      state.big = 'changed';
      expect((await post(yoga, '{ big }')).data.big).toBe('changed'); // not kept: too large
      // Small answers, each different (aliases), until the budget is spent: the first goes first.
      expect((await post(yoga, '{ first: value }')).data.first).toBe('a');
      // Each about 750 bytes, under the 1 kB a single answer may take; 40 of them are over 16 kB.
      for (let i = 0; i < 40; i++) await post(yoga, `{ v${i}: value medium }`);
      state.value = 'b';
      expect((await post(yoga, '{ first: value }')).data.first).toBe('b');
    } finally {
      await yoga.dispose();
    }
  });

  it('never answers a mutation from the cache, even one sent without a key', async () => {
    const { schema: s } = schema();
    const pubsub = createPubSub<{ generationUpdated: [string, string]; apiKeyChanged: [string] }>();
    const plugins = responseCachePlugins({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 20, identify: async () => null, pubsub, logger: pino({ level: 'silent' }) });
    const yoga = createYoga({ schema: s, plugins });
    try {
      expect((await post(yoga, 'mutation { touch }')).data.touch).toBe(1);
      expect((await post(yoga, 'mutation { touch }')).data.touch).toBe(2);
    } finally {
      await yoga.dispose();
    }
  });

  it("tells every process of a key's mutation, and drops only that key's answers", async () => {
    const { state, schema: s } = schema();
    const pubsub = createPubSub<{ generationUpdated: [string, string]; apiKeyChanged: [string] }>();
    const heard: string[] = [];
    const listening = (async () => {
      for await (const key of pubsub.subscribe('apiKeyChanged')) if (heard.push(key) === 1) return;
    })();
    const plugins = responseCachePlugins({ ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 20, identify: async () => ({ id: 'key-1', name: 'k' }), pubsub, logger: pino({ level: 'silent' }) });
    // The key, as the server's context factory puts it on the context.
    const withKey: Plugin<{ apiKey: { id: string; name: string } }> = { onContextBuilding: ({ extendContext }) => extendContext({ apiKey: { id: 'key-1', name: 'k' } }) };
    const yoga = createYoga({ schema: s, plugins: [withKey as Plugin, ...plugins] });
    try {
      expect((await post(yoga, '{ value }')).data.value).toBe('a');
      state.value = 'b';
      expect((await post(yoga, '{ value }')).data.value).toBe('a');
      await post(yoga, 'mutation { touch }');
      await listening;
      expect(heard).toEqual(['key-1']);
      expect((await post(yoga, '{ value }')).data.value).toBe('b');
      // A mutation is never answered from the cache: the same one twice runs twice.
      expect((await post(yoga, 'mutation { touch }')).data.touch).toBe(2);
      expect((await post(yoga, 'mutation { touch }')).data.touch).toBe(3);
      // Redis back after an outage (an event without a key): every answer goes.
      expect((await post(yoga, '{ value }')).data.value).toBe('b');
      state.value = 'c';
      expect((await post(yoga, '{ value }')).data.value).toBe('b');
      pubsub.publish('apiKeyChanged', null as unknown as string);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect((await post(yoga, '{ value }')).data.value).toBe('c');
    } finally {
      await yoga.dispose();
    }
  });
});
