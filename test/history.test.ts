import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, ExtensionsDocument, GenerationDocument, GenerationsDocument, GenerationUpdatedDocument, NodeDocument, type GenerationsQuery } from './gql/graphql.ts';
import { extendOk, startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

let stack: Stack;
let otherKey: string;
const mine: string[] = [];
let theirs: string;

const create = (prompt: string, key?: string, extra: Record<string, unknown> = {}) => extendOk(stack, prompt, extra, key);

beforeAll(async () => {
  stack = await startStack();
  otherKey = await stack.newKey('other tenant');
  for (let i = 0; i < 5; i++) mine.push(await create(`mine ${i}`));
  theirs = await create('theirs', otherKey);
  await Promise.all([...mine, theirs].map((id, i) => waitForTerminal(stack, id, i === mine.length ? otherKey : undefined)));
});
afterAll(() => stack?.close());

describe('history', () => {
  it('pages newest first with first/after and walks back with last/before', async () => {
    const newestFirst = [...mine].reverse();
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: GenerationsQuery['generations'] = (await stack.execute(GenerationsDocument, { first: 2, after })).data!.generations;
      expect(page.totalCount).toBe(5);
      seen.push(...page.edges.map((edge) => edge.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor!;
    }
    expect(seen).toEqual(newestFirst);

    const lastTwo = (await stack.execute(GenerationsDocument, { last: 2 })).data!.generations;
    expect(lastTwo.edges.map((edge) => edge.node.id)).toEqual(newestFirst.slice(3));
    expect(lastTwo.pageInfo.hasPreviousPage).toBe(true);
    const before = (await stack.execute(GenerationsDocument, { last: 2, before: lastTwo.pageInfo.startCursor })).data!.generations;
    expect(before.edges.map((edge) => edge.node.id)).toEqual(newestFirst.slice(1, 3));
  });

  it('filters by status', async () => {
    const succeeded = (await stack.execute(GenerationsDocument, { first: 10, status: 'SUCCEEDED' })).data!.generations;
    expect(succeeded.totalCount).toBe(5);
    const failed = (await stack.execute(GenerationsDocument, { first: 10, status: 'FAILED' })).data!.generations;
    expect(failed.totalCount).toBe(0);
    expect(failed.edges).toEqual([]);
  });

  it('lists the extensions of a generation', async () => {
    const child = await create('child', undefined, { videoUrl: null, sourceGenerationId: mine[0] });
    const result = (await stack.execute(ExtensionsDocument, { id: mine[0]! })).data!.generation!;
    expect(result.extensions.totalCount).toBe(1);
    expect(result.extensions.edges[0]!.node).toEqual({ id: child, source: { id: mine[0] } });
    await waitForTerminal(stack, child);
  });
});

describe('tenancy: one key never sees another key’s generations', () => {
  it('generation(id) and node(id) answer null for another key’s generation', async () => {
    expect((await stack.execute(GenerationDocument, { id: theirs })).data!.generation).toBeNull();
    expect((await stack.execute(NodeDocument, { id: theirs })).data!.node).toBeNull();
    // The owner does see it.
    expect((await stack.execute(GenerationDocument, { id: theirs }, otherKey)).data!.generation!.id).toBe(theirs);
    expect((await stack.execute(NodeDocument, { id: theirs }, otherKey)).data!.node).toMatchObject({ __typename: 'Generation', id: theirs });
  });

  it('keeps keys apart when their lookups of one generation are batched together', async () => {
    // Concurrent generation(id) lookups made in one tick share one Prisma query; each must still
    // be filtered by its own key.
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.execute(GenerationDocument, { id: theirs }, i % 2 ? otherKey : stack.key)));
    results.forEach((result, i) => {
      expect(result.errors).toBeUndefined();
      if (i % 2) expect(result.data!.generation!.id).toBe(theirs);
      else expect(result.data!.generation).toBeNull();
    });
  });

  it('history lists only the caller’s own', async () => {
    const page = (await stack.execute(GenerationsDocument, { first: 50 }, otherKey)).data!.generations;
    expect(page.edges.map((edge) => edge.node.id)).toEqual([theirs]);
  });

  it('cannot extend another key’s generation: it looks not found', async () => {
    const result = await stack.execute(ExtendVideoDocument, { input: { sourceGenerationId: theirs, prompt: 'steal' } });
    expect(result.data!.extendVideo).toMatchObject({ __typename: 'NotFoundError', id: theirs });
  });

  it('cannot subscribe to another key’s generation', async () => {
    const result = await stack.subscribe(GenerationUpdatedDocument, { id: theirs });
    const first = Symbol.asyncIterator in result ? (await result[Symbol.asyncIterator]().next()).value : result;
    expect(first?.errors?.[0]?.message).toMatch(/not found/);
    expect(first?.data?.generationUpdated ?? null).toBeNull();
  });

  it('a revoked key is refused', async () => {
    const { revokeApiKey } = await import('../src/auth/api-keys.ts');
    const key = await stack.newKey('short-lived');
    const row = await stack.app.db.apiKey.findFirstOrThrow({ where: { name: 'short-lived' } });
    expect((await stack.execute(GenerationsDocument, { first: 1 }, key)).errors).toBeUndefined();
    await revokeApiKey(stack.app.db, row.id);
    expect((await stack.execute(GenerationsDocument, { first: 1 }, key)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('stores only a hash of each key', async () => {
    const rows = await stack.app.db.apiKey.findMany();
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(stack.key);
    expect(dump).not.toContain(otherKey);
  });
});
