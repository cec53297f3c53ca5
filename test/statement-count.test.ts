/**
 * Regression guard: the SQL statements one `generations(first: N)` request sends must not grow
 * with N (no N+1 on source, video or extensions.totalCount).
 *
 * How statements are counted: the server runs in this process (startStack), and Prisma reaches
 * PostgreSQL through `@prisma/adapter-pg`, whose pg.Pool creates `pg.Client`s. We wrap
 * `pg.Client.prototype.query` (the same module instance the adapter loads), so every statement
 * the server really sends is seen. pg-boss shares the driver; its statements (which all name the
 * `pgboss` schema) are left out, and the job queue is idle while we measure. The count covers the
 * whole HTTP request, including the API-key lookup in the context factory, which only the first
 * request of a key sends: `authenticate` then remembers the key for AUTH_CACHE_TTL_MS.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearApiKeyCache, hashApiKey } from '../src/auth/api-keys.ts';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startStack, waitForQuietQueue, waitForTerminal, type Stack } from './helpers/stack.ts';

const PAGE_QUERY = `query Page($first: Int!) {
  generations(first: $first) {
    totalCount
    edges { node { id source { id } video { url } extensions { totalCount } } }
  }
}`;

/**
 * Measured: the page with each node's source, video and extension count in one statement
 * (src/db/history.ts), and the connection's totalCount. What resolving the query itself costs.
 */
const EXPECTED_FOR_QUERY = 2;
/** A key's first request (none in the last AUTH_CACHE_TTL_MS) looks the key up first. */
const EXPECTED_FIRST_OF_KEY = EXPECTED_FOR_QUERY + 1;
/** Later requests find the key remembered (the measured ones follow the first within a second). */
const EXPECTED_PER_REQUEST = EXPECTED_FOR_QUERY;

interface PageResult {
  data?: { generations: { totalCount: number; edges: { node: { id: string; source: { id: string } | null; video: { url: string } | null; extensions: { totalCount: number } } }[] } };
  errors?: unknown[];
}

let stack: Stack;
const statements: string[] = [];
let recording = false;
const originalQuery = pg.Client.prototype.query;

function textOf(config: unknown): string {
  if (typeof config === 'string') return config;
  if (config && typeof config === 'object' && 'text' in config) return String((config as { text: unknown }).text);
  return String(config);
}

const isKeyLookup = (sql: string) => sql.includes('FROM "public"."ApiKey"');

async function countStatements(first: number): Promise<{ count: number; forQuery: number; sql: string[]; body: PageResult }> {
  statements.length = 0;
  recording = true;
  const response = await fetch(stack.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': stack.key },
    body: JSON.stringify({ query: PAGE_QUERY, variables: { first } }),
  });
  const body = (await response.json()) as PageResult;
  recording = false;
  const sql = [...statements];
  return { count: sql.length, forQuery: sql.filter((text) => !isKeyLookup(text)).length, sql, body };
}

beforeAll(async () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's overloads can't be restated generically
  (pg.Client.prototype as any).query = function (this: pg.Client, ...args: unknown[]) {
    const text = textOf(args[0]);
    if (recording && !/pgboss/i.test(text)) statements.push(text.replace(/\s+/g, ' ').slice(0, 200));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (originalQuery as any).apply(this, args);
  };

  stack = await startStack();
  // Two real generations through the API and the fake Segmind: a finished one with a stored
  // video, and an extension of it.
  const create = async (input: Record<string, unknown>) => {
    const result = await stack.execute(ExtendVideoDocument, { input: { prompt: 'statement count', ...input } as never });
    const extended = result.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    await waitForTerminal(stack, extended.generation.id);
    await waitForQuietQueue(stack, extended.generation.id);
    return extended.generation.id;
  };
  const rootGlobal = await create({ videoUrl: 'https://videos.example/a.mp4' });
  await create({ videoUrl: null, sourceGenerationId: rootGlobal });

  // More of the same, cloned from the real rows: 120 generations in chains of three (each with
  // a video, the later ones extending the earlier), so every page has sources, videos and
  // extensions.
  const db = stack.app.db;
  const template = await db.generation.findFirstOrThrow({ where: { video: { isNot: null } }, include: { video: true } });
  const { video: templateVideo, ...row } = template;
  let previous: string | null = null;
  for (let i = 0; i < 120; i++) {
    const id = uuidv7();
    const sourceId: string | null = i % 3 === 0 ? null : previous;
    await db.generation.create({
      data: {
        ...row,
        id,
        cost: row.cost,
        prompt: `clone ${i}`,
        sourceId,
        idempotencyKey: null,
        upstreamRequestId: `req-${randomBytes(8).toString('hex')}`,
        plannedVideoId: randomBytes(16).toString('base64url'),
      },
    });
    if (i % 4 !== 3) {
      await db.video.create({ data: { ...templateVideo!, id: randomBytes(16).toString('base64url'), generationId: id } });
    }
    previous = id;
  }
});

afterAll(async () => {
  pg.Client.prototype.query = originalQuery;
  await stack?.close();
});

describe('SQL statements per generations page', () => {
  it('sends the same small number of statements for 5, 50 and 100 rows', async () => {
    // Warm up: the first request of a process may prepare things lazily. Made the key's first
    // request too (the set-up used the key moments ago), so it shows the key lookup.
    clearApiKeyCache(stack.app.db);
    const first = await countStatements(5);
    expect(first.sql.filter(isKeyLookup), first.sql.join('\n')).toHaveLength(1);
    expect(first.count, first.sql.join('\n')).toBe(EXPECTED_FIRST_OF_KEY);
    const results = new Map<number, Awaited<ReturnType<typeof countStatements>>>();
    for (const first of [5, 50, 100]) results.set(first, await countStatements(first));

    for (const [first, { count, forQuery, sql, body }] of results) {
      expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
      const page = body.data!.generations;
      expect(page.totalCount).toBe(122);
      expect(page.edges).toHaveLength(first);
      // The page really exercises every relation.
      expect(page.edges.some((edge) => edge.node.source !== null)).toBe(true);
      expect(page.edges.some((edge) => edge.node.video !== null)).toBe(true);
      expect(page.edges.some((edge) => edge.node.extensions.totalCount > 0)).toBe(true);
      const sent = `first: ${first} sent:\n${sql.join('\n')}`;
      expect(sql.filter(isKeyLookup), sent).toHaveLength(0);
      expect(count, sent).toBe(EXPECTED_PER_REQUEST);
      expect(forQuery, sent).toBe(EXPECTED_FOR_QUERY);
    }
    // The target (at most 4) holds for the query's own statements.
    expect(EXPECTED_FOR_QUERY).toBeLessThanOrEqual(4);
  });
});

/**
 * extendVideo answers from the row its INSERT returned: the success payload's scalar fields cost
 * no further read, and relations asked for are loaded, right. Its own stack, without a worker, so
 * no background step sends statements while they are counted.
 */
describe('SQL statements of one extendVideo', () => {
  let writer: Stack;
  let sourceGlobalId = '';

  const EXTEND = `mutation Extend($input: ExtendVideoInput!) {
    extendVideo(input: $input) {
      __typename
      ... on ExtendVideoSuccess { generation { id status prompt quality createdAt elapsedSeconds source { id } video { url } extensions { totalCount } } }
    }
  }`;
  const EXTEND_SCALARS = `mutation Extend($input: ExtendVideoInput!) {
    extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id status prompt quality createdAt } } }
  }`;

  interface ExtendResult {
    data?: {
      extendVideo: {
        __typename: string;
        generation?: { id: string; status: string; prompt: string; quality: string; createdAt: string; source?: { id: string } | null; video?: { url: string } | null; extensions?: { totalCount: number } };
      };
    };
    errors?: unknown[];
  }

  async function extend(query: string, input: Record<string, unknown>): Promise<{ sql: string[]; body: ExtendResult }> {
    statements.length = 0;
    recording = true;
    const response = await fetch(writer.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': writer.key },
      body: JSON.stringify({ query, variables: { input } }),
    });
    const body = (await response.json()) as ExtendResult;
    recording = false;
    return { sql: [...statements], body };
  }

  beforeAll(async () => {
    writer = await startStack({ worker: false });
    // A finished generation with a stored video, to extend.
    const db = writer.app.db;
    const apiKey = await db.apiKey.findUniqueOrThrow({ where: { keyHash: hashApiKey(writer.key) } });
    const id = uuidv7();
    const videoId = randomBytes(16).toString('base64url');
    await db.generation.create({
      data: {
        id, apiKeyId: apiKey.id, status: 'SUCCEEDED', prompt: 'the source', duration: 5, quality: 'Q540P', motionMode: 'NORMAL',
        sourceVideoUrl: 'https://videos.example/a.mp4', paramsHash: randomBytes(32).toString('hex'), plannedVideoId: videoId,
        upstreamStatus: 'COMPLETED', completedAt: new Date(),
      },
    });
    await db.video.create({
      data: { id: videoId, generationId: id, storageKey: `${videoId}.mp4`, contentType: 'video/mp4', byteSize: 1000, width: 960, height: 540, durationSeconds: 5, sha256: randomBytes(32).toString('hex') },
    });
    sourceGlobalId = Buffer.from(`Generation:${id}`).toString('base64');
  });

  afterAll(async () => {
    await writer?.close();
  });

  it('reads nothing back after the INSERT when the payload asks for columns only', async () => {
    // The key's first request looks it up; the measured one finds it remembered.
    await extend(EXTEND_SCALARS, { videoUrl: 'https://videos.example/warm.mp4', prompt: 'warm up' });
    const { sql, body } = await extend(EXTEND_SCALARS, { videoUrl: 'https://videos.example/b.mp4', prompt: 'no read back', quality: 'Q720P' });
    const sent = sql.join('\n');
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    const generation = body.data!.extendVideo.generation!;
    expect(generation).toMatchObject({ status: 'QUEUED', prompt: 'no read back', quality: 'Q720P' });
    expect(new Date(generation.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    // BEGIN with the per-key lock, the limit check, the INSERT, COMMIT (pg-boss's enqueue is not counted).
    expect(sql, sent).toHaveLength(4);
    expect(sql[0], sent).toMatch(/^BEGIN; .*pg_advisory_xact_lock/);
    expect(sql[2], sent).toMatch(/^INSERT INTO "Generation"/);
    expect(sql[3], sent).toBe('COMMIT');
    expect(sql.filter((text) => text.startsWith('SELECT') && text.includes('"Generation"."id"')), sent).toHaveLength(0);
  });

  it('loads the relations the payload asks for', async () => {
    const { sql, body } = await extend(EXTEND, { sourceGenerationId: sourceGlobalId, prompt: 'chained' });
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    const generation = body.data!.extendVideo.generation!;
    expect(generation).toMatchObject({ status: 'QUEUED', prompt: 'chained', source: { id: sourceGlobalId }, video: null, extensions: { totalCount: 0 } });
    // The relations are read after the commit; the source's own lookup before it.
    const commit = sql.indexOf('COMMIT');
    expect(commit, sql.join('\n')).toBeGreaterThan(0);
    expect(sql.slice(commit + 1).length, sql.join('\n')).toBeGreaterThan(0);
  });
});
