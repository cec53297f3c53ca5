import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Database } from '../src/db/client.ts';
import { GENERATION_FIELDS } from '../src/db/generations.ts';
import { countGenerations, readHistoryPage, type PageQuery } from '../src/db/history.ts';
import { statementNamer } from '../src/db/sql.ts';
import { CancelGenerationDocument, GenerationsDocument } from './gql/graphql.ts';
import { extendOk, startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

// A history page goes to `pg` in one statement for the usual shapes (src/db/history.ts). Its rows
// must be what Prisma's findMany returns for the same query, field by field, relations and counts
// included; any other shape must be left to Prisma.

let stack: Stack;
let database: Database;
let apiKeyId: string;
let otherKeyId: string;
const ids: string[] = []; // oldest first

const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

const create = (prompt: string, extra: Record<string, unknown> = {}, key?: string) => extendOk(stack, prompt, extra, key);

beforeAll(async () => {
  stack = await startStack();
  database = openDb(stack.app.databaseUrl, { max: 2 });
  const otherKey = await stack.newKey('other');
  // A chain (each extending the previous, once finished), a canceled one, and another key's.
  let previous: string | null = null;
  for (let i = 0; i < 4; i++) {
    const id: string = await create(`chain ${i}`, previous ? { videoUrl: null, sourceGenerationId: previous } : {});
    await waitForTerminal(stack, id);
    ids.push(id);
    previous = id;
  }
  const canceled = await create('canceled', { idempotencyKey: 'page-test' });
  await stack.execute(CancelGenerationDocument, { id: canceled });
  ids.push(canceled);
  await waitForTerminal(stack, await create('theirs', {}, otherKey), otherKey);
  const rows = await stack.app.db.generation.findMany({ where: { prompt: { in: ['chain 0', 'theirs'] } }, select: { apiKeyId: true, prompt: true } });
  apiKeyId = rows.find((row) => row.prompt === 'chain 0')!.apiKeyId;
  otherKeyId = rows.find((row) => row.prompt === 'theirs')!.apiKeyId;
});
afterAll(async () => {
  await database?.close();
  await stack?.close();
});

const allColumns = Object.fromEntries(Object.keys(GENERATION_FIELDS).map((field) => [field, true]));
const BENCH_PAGE = { source: { select: { id: true } }, video: { select: { id: true } }, _count: { select: { extensions: true } }, id: true };
const WIDE_PAGE = {
  ...allColumns,
  source: { select: { id: true, prompt: true, createdAt: true, cost: true, status: true } },
  video: { select: { id: true, generationId: true, storageKey: true, contentType: true, byteSize: true, width: true, height: true, durationSeconds: true, sha256: true, createdAt: true } },
  _count: { select: { extensions: true } },
};

async function samePage(filter: { apiKeyId: string; status: 'SUCCEEDED' | 'CANCELED' | null }, query: PageQuery) {
  const ours = await readHistoryPage(database.pool, filter, query);
  const prismas = await stack.app.db.generation.findMany({ ...(query as object), where: { apiKeyId: filter.apiKeyId, ...(filter.status && { status: filter.status }) }, orderBy: { id: 'desc' } });
  expect(ours).not.toBeNull();
  expect(ours).toEqual(prismas);
  return ours!;
}

describe('a history page in one statement', () => {
  it("answers Prisma's rows for the bench's page and for a page of every column", async () => {
    const page = await samePage({ apiKeyId, status: null }, { take: 101, skip: 0, select: BENCH_PAGE });
    expect(page.map((row) => row.id)).toEqual(ids.map(rawId).reverse());
    const wide = await samePage({ apiKeyId, status: null }, { take: 101, skip: 0, select: WIDE_PAGE });
    // The chain's links, videos and counts are there, not just nulls on both sides.
    expect(wide.filter((row) => (row as { source?: unknown }).source).length).toBe(3);
    expect(wide.filter((row) => (row as { video?: unknown }).video).length).toBe(4);
    expect(wide.map((row) => (row as unknown as { _count: { extensions: number } })._count.extensions)).toEqual([0, 0, 1, 1, 1]);
  });

  it('pages with a cursor as Prisma does, including cursors that are gone or not the key’s', async () => {
    const newestFirst = ids.map(rawId).reverse();
    const after = await samePage({ apiKeyId, status: null }, { take: 2, skip: 1, cursor: { id: newestFirst[1]! }, select: BENCH_PAGE });
    expect(after.map((row) => row.id)).toEqual(newestFirst.slice(2, 4));
    expect(await samePage({ apiKeyId, status: null }, { take: 2, skip: 1, cursor: { id: 'no-such-generation' }, select: BENCH_PAGE })).toEqual([]);
    const theirs = (await stack.app.db.generation.findFirstOrThrow({ where: { apiKeyId: otherKeyId } })).id;
    await samePage({ apiKeyId, status: null }, { take: 3, skip: 1, cursor: { id: theirs }, select: BENCH_PAGE });
    await samePage({ apiKeyId, status: null }, { take: 3, skip: 0, cursor: { id: newestFirst[0]! }, select: { id: true, prompt: true } });
  });

  it('filters by status, and counts as Prisma counts', async () => {
    expect((await samePage({ apiKeyId, status: 'SUCCEEDED' }, { take: 10, skip: 0, select: WIDE_PAGE })).length).toBe(4);
    expect((await samePage({ apiKeyId, status: 'CANCELED' }, { take: 10, skip: 0, select: BENCH_PAGE })).length).toBe(1);
    expect(await countGenerations(database.pool, { apiKeyId, status: null })).toBe(await stack.app.db.generation.count({ where: { apiKeyId } }));
    expect(await countGenerations(database.pool, { apiKeyId, status: 'SUCCEEDED' })).toBe(4);
    expect(await countGenerations(database.pool, { apiKeyId: otherKeyId, status: null })).toBe(1);
  });

  it('leaves other shapes to Prisma', async () => {
    const filter = { apiKeyId, status: null };
    expect(await readHistoryPage(database.pool, filter, { take: -6, skip: 0, select: BENCH_PAGE })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, include: { video: true } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, select: { id: true, source: { select: { id: true, video: { select: { id: true } } } } } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, select: { id: true, extensions: { select: { id: true }, take: 3 } } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, select: { id: true, _count: { select: { extensions: { where: { status: 'SUCCEEDED' } } } } } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 2, select: { id: true } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, select: { id: true, source: { select: {} } } })).toBeNull();
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 0, cursor: {}, select: { id: true } })).toBeNull();
  });

  it('answers an empty page for a cursor no row can have, and a null cursor as none', async () => {
    const filter = { apiKeyId, status: null };
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 1, cursor: { id: 'bad\0cursor' }, select: BENCH_PAGE })).toEqual([]);
    expect(await readHistoryPage(database.pool, filter, { take: 5, skip: 1, cursor: { id: 'lone \ud800' }, select: BENCH_PAGE })).toEqual([]);
    expect((await readHistoryPage(database.pool, filter, { take: 5, skip: 0, cursor: null as never, select: { id: true } }))?.length).toBe(5);
    // Through GraphQL: a cursor naming an id with a NUL (base64 of Pothos' `GPC:S:\0`) is an empty page, not an error.
    const logged = stack.logs.length;
    const page = await stack.execute(GenerationsDocument, { first: 5, after: Buffer.from('GPC:S:\0').toString('base64') });
    expect(page.errors).toBeUndefined();
    expect(page.data!.generations.edges).toEqual([]);
    expect(stack.logs.slice(logged).filter((line) => JSON.parse(line).level >= 50)).toEqual([]);
  });
});

describe('statement names', () => {
  it('names a text once it has come often enough, always the same, and no more texts than the bound', () => {
    const name = statementNamer('t', 2, 3);
    expect([name('a'), name('a')]).toEqual([undefined, undefined]);
    const a = name('a');
    expect(a).toMatch(/^t_[0-9a-f]{24}$/);
    expect(name('a')).toBe(a);
    for (let i = 0; i < 3; i++) name('b');
    expect(name('b')).toMatch(/^t_/);
    for (let i = 0; i < 5; i++) expect(name('c')).toBeUndefined();
    expect(statementNamer('u', 1)('x')).toMatch(/^u_/);
  });
});
