import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_CACHE_TTL_MS, revokeApiKey } from '../src/auth/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import { ExtendVideoBriefDocument, GenerationsDocument, type ExtendVideoInput } from './gql/graphql.ts';
import { startStack, submissions, type Stack } from './helpers/stack.ts';

const input = (prompt: string, extra: Partial<ExtendVideoInput> = {}): ExtendVideoInput => ({ videoUrl: 'https://videos.example/a.mp4', prompt, ...extra });
const extend = (stack: Stack, prompt: string, key?: string, extra?: Partial<ExtendVideoInput>) =>
  stack.execute(ExtendVideoBriefDocument, { input: input(prompt, extra) }, key).then((result) => result.data!.extendVideo);

describe('per-key limits', () => {
  it('rate: the fourth generation in a minute gets RateLimitedError with a retry hint, and nothing is recorded', async () => {
    const stack = await startStack({ env: { RATE_LIMIT_PER_MINUTE: '3' }, worker: false });
    try {
      for (let i = 0; i < 3; i++) expect((await extend(stack, `ok ${i}`)).__typename).toBe('ExtendVideoSuccess');
      const limited = await extend(stack, 'one too many');
      expect(limited).toMatchObject({ __typename: 'RateLimitedError', rateLimit: 'REQUESTS_PER_MINUTE', max: 3 });
      if (limited.__typename !== 'RateLimitedError') return;
      expect(limited.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(limited.retryAfterSeconds).toBeLessThanOrEqual(60);
      expect(await stack.app.db.generation.count()).toBe(3);
      // Another key has its own allowance.
      expect((await extend(stack, 'other key', await stack.newKey('b'))).__typename).toBe('ExtendVideoSuccess');
    } finally {
      await stack.close();
    }
  });

  it('concurrency: concurrent requests never exceed the cap, across the race', async () => {
    const stack = await startStack({ env: { MAX_CONCURRENT_PER_KEY: '2' }, worker: false });
    try {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => extend(stack, `burst ${i}`)));
      const accepted = results.filter((r) => r.__typename === 'ExtendVideoSuccess');
      const limited = results.filter((r) => r.__typename === 'RateLimitedError');
      expect(accepted).toHaveLength(2);
      expect(limited).toHaveLength(8);
      expect(limited[0]).toMatchObject({ rateLimit: 'CONCURRENT_GENERATIONS', max: 2 });
      expect(await stack.app.db.generation.count()).toBe(2);
    } finally {
      await stack.close();
    }
  });

  it('daily budget: refused with InsufficientCreditsError before anything reaches Segmind', async () => {
    const stack = await startStack({ env: { DAILY_BUDGET_USD: '1' }, worker: false });
    try {
      expect((await extend(stack, 'a')).__typename).toBe('ExtendVideoSuccess'); // $0.375
      expect((await extend(stack, 'b')).__typename).toBe('ExtendVideoSuccess'); // $0.75
      const refused = await extend(stack, 'c');
      expect(refused).toMatchObject({ __typename: 'InsufficientCreditsError', creditLimit: 'DAILY_BUDGET', requiredUsd: 0.375, availableUsd: 0.25 });
      expect(await stack.app.db.generation.count()).toBe(2);
      expect(submissions(stack)).toHaveLength(0);
    } finally {
      await stack.close();
    }
  });
});

describe('operation and request limits', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ worker: false });
  });
  afterAll(() => stack?.close());

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.key, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('allows one extendVideo per operation, aliases and fragments included', async () => {
    const twice = `mutation {
      a: extendVideo(input: { videoUrl: "https://v.example/a.mp4", prompt: "a" }) { __typename }
      ... on Mutation { b: extendVideo(input: { videoUrl: "https://v.example/a.mp4", prompt: "b" }) { __typename } }
    }`;
    const body = (await (await post({ query: twice })).json()) as { errors?: { message: string }[]; data?: unknown };
    expect(body.errors?.[0]?.message).toMatch(/Only one extendVideo/);
    expect(body.data ?? null).toBeNull();
    expect(await stack.app.db.generation.count()).toBe(0);
  });

  it('rejects deep, alias-heavy and token-heavy operations', async () => {
    const deep = `{ generations(first: 1) { edges { node { ${'source { '.repeat(15)}id${' }'.repeat(15)} } } } }`;
    const aliases = `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: generations(first: 1) { totalCount }`).join(' ')} }`;
    const tokens = `{ generations(first: 1) { totalCount ${'totalCount '.repeat(2500)} } }`;
    for (const query of [deep, aliases, tokens]) {
      const response = await post({ query });
      expect(response.status).toBeLessThan(500);
      const body = (await response.json()) as { errors?: unknown[]; data?: unknown };
      expect(body.errors?.length).toBeGreaterThan(0);
      expect(body.data ?? null).toBeNull();
    }
  });

  it('does not batch', async () => {
    const response = await post([{ query: '{ __typename }' }, { query: '{ __typename }' }]);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  it('refuses bodies over MAX_REQUEST_BYTES with 413, and bodies of unknown length with 411', async () => {
    const big = await post({ query: '{ __typename }', variables: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    expect(big.status).toBe(413);
    const chunked = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.key },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"query":"{ __typename }"}'));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(411);
    // The server is still fine.
    expect((await post({ query: '{ __typename }' })).status).toBe(200);
  });

  it('blocks cross-site "simple" requests (CSRF) but not real clients', async () => {
    const simple = await fetch(`${stack.graphqlUrl}?query=${encodeURIComponent('{ __typename }')}`);
    expect(simple.status).toBe(403);
    const withKey = await fetch(`${stack.graphqlUrl}?query=${encodeURIComponent('{ __typename }')}`, { headers: { 'x-api-key': stack.key } });
    expect(withKey.status).toBe(200);
  });

  it('does not suggest field names to strangers', async () => {
    const body = (await (await post({ query: '{ generatio { id } }' })).json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).not.toMatch(/Did you mean/);
  });
});

describe('API keys remembered for AUTH_CACHE_TTL_MS', () => {
  it('a key revoked by another process is refused within AUTH_CACHE_TTL_MS', async () => {
    const stack = await startStack({ worker: false });
    // The other process, as `npm run apikey:revoke` is one: its own Db on the same database.
    const elsewhere = createDb(stack.app.databaseUrl, { max: 1 });
    try {
      const key = await stack.newKey('revoked elsewhere');
      const accepted = async () => (await stack.execute(GenerationsDocument, { first: 1 }, key)).errors?.[0]?.extensions?.code !== 'UNAUTHENTICATED';
      expect(await accepted()).toBe(true);
      const { id } = await elsewhere.apiKey.findFirstOrThrow({ where: { name: 'revoked elsewhere' } });
      expect(await revokeApiKey(elsewhere, id)).toBe(true);
      const revokedAt = Date.now();
      // The server was not told: it still knows the key from the request above, for now.
      expect(await accepted()).toBe(true);
      while (await accepted()) {
        expect(Date.now() - revokedAt, 'still accepted').toBeLessThan(AUTH_CACHE_TTL_MS + 1000);
        await sleep(100);
      }
      expect(Date.now() - revokedAt).toBeLessThan(AUTH_CACHE_TTL_MS + 1000);
    } finally {
      await elsewhere.$disconnect();
      await stack.close();
    }
  });
});
