import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeExpiredVideos } from '../src/generations/cleanup.ts';
import { LocalVideoStorage } from '../src/storage/storage.ts';
import {
  DeleteGenerationDocument,
  EstimateCostDocument,
  ExtendVideoBriefDocument,
  ExtendVideoDocument,
  GenerationDocument,
  GenerationRetentionDocument,
  NodeDocument,
  ViewerDocument,
  type ExtendVideoInput,
} from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { DAILY_BUDGET_USD: '4' } });
});
afterAll(() => stack?.close());

const base = { videoUrl: 'https://videos.example/clip.mp4', prompt: 'the tide comes in' };
const rawId = (id: string) => decodeGlobalID(id).id;

async function extend(target: Stack, input: Partial<ExtendVideoInput>, key?: string) {
  const result = await target.execute(ExtendVideoDocument, { input: { ...base, ...input } as ExtendVideoInput }, key);
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(`${extended.__typename}: ${extended.message}`);
  return extended.generation.id;
}

async function estimate(target: Stack, input: Partial<ExtendVideoInput>, key?: string) {
  const result = await target.execute(EstimateCostDocument, { input: { ...base, ...input } as ExtendVideoInput }, key);
  expect(result.errors).toBeUndefined();
  return result.data!.estimateCost;
}

/** Where the local storage keeps a generation's MP4, read from its row. */
async function storedFile(target: Stack, id: string) {
  const video = await target.app.db.video.findUniqueOrThrow({ where: { generationId: rawId(id) } });
  return { path: join(target.config.storageDir, video.storageKey), url: `${target.app.url}/videos/${video.id}.mp4` };
}
const exists = (path: string) => stat(path).then(() => true, () => false);

describe('estimateCost', () => {
  it('prices an input from the budget table with the same rules, and records, spends and asks Segmind nothing', async () => {
    const requests = stack.segmind.requests.length;
    const generations = await stack.app.db.generation.count();

    expect(await estimate(stack, {})).toEqual({ __typename: 'CostEstimate', usd: 0.375, quality: 'Q540P', duration: 5 });
    expect(await estimate(stack, { quality: 'Q720P', duration: 8 })).toEqual({ __typename: 'CostEstimate', usd: 1, quality: 'Q720P', duration: 8 });
    expect(await estimate(stack, { quality: 'Q1080P' })).toMatchObject({ usd: 1, quality: 'Q1080P' });
    const invalid = await estimate(stack, { quality: 'Q1080P', duration: 8 });
    expect(invalid).toMatchObject({ __typename: 'InvalidInputError', fields: [{ path: ['input', 'duration'] }] });
    expect(await estimate(stack, { motionMode: 'FAST', duration: 8 })).toMatchObject({ __typename: 'InvalidInputError', fields: [{ path: ['input', 'duration'] }] });

    expect(stack.segmind.requests.length).toBe(requests);
    expect(await stack.app.db.generation.count()).toBe(generations);
  });

  it("prices a chained input at its source's quality, and cannot see another key's source", async () => {
    const source = await extend(stack, { quality: 'Q1080P', prompt: 'estimate source' });
    await waitForTerminal(stack, source);
    const requests = stack.segmind.requests.length;

    expect(await estimate(stack, { videoUrl: null, sourceGenerationId: source })).toEqual({ __typename: 'CostEstimate', usd: 1, quality: 'Q1080P', duration: 5 });
    expect(await estimate(stack, { videoUrl: null, sourceGenerationId: source, duration: 8 })).toMatchObject({
      __typename: 'InvalidInputError',
      fields: [{ path: ['input', 'duration'], message: 'Q1080P quality requires a duration of 5 seconds' }],
    });
    const other = await stack.newKey('estimator');
    expect(await estimate(stack, { videoUrl: null, sourceGenerationId: source }, other)).toEqual({ __typename: 'NotFoundError', message: expect.any(String), id: source });
    expect(stack.segmind.requests.length).toBe(requests);
  });

  it('requires an API key', async () => {
    const result = await stack.execute(EstimateCostDocument, { input: base }, null);
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('viewer', () => {
  it('names the key and shows its limits and what it used today, deleted generations included', async () => {
    const key = await stack.newKey('usage watcher');
    const viewer = async () => (await stack.execute(ViewerDocument, {}, key)).data!.viewer;
    const before = await viewer();
    expect(before).toMatchObject({
      name: 'usage watcher',
      limits: { requestsPerMinute: 10_000, concurrentGenerations: 10_000, dailyBudgetUsd: 4 },
      usageToday: { generationsStarted: 0, estimatedSpentUsd: 0, budgetRemainingUsd: 4 },
    });
    const row = await stack.app.db.apiKey.findFirstOrThrow({ where: { name: 'usage watcher' } });
    expect(decodeGlobalID(before.id)).toEqual({ typename: 'ApiKey', id: row.id });
    expect(before.createdAt).toBe(row.createdAt.toISOString());
    expect(before.usageToday.since).toBe(`${new Date().toISOString().slice(0, 10)}T00:00:00.000Z`);
    expect((await stack.execute(NodeDocument, { id: before.id }, key)).data!.node).toMatchObject({ __typename: 'ApiKey', id: before.id });
    expect((await stack.execute(NodeDocument, { id: before.id })).data!.node).toBeNull();

    const big = await extend(stack, { quality: 'Q720P', duration: 8, prompt: 'a dollar' }, key);
    expect((await waitForTerminal(stack, big, key)).status).toBe('SUCCEEDED');
    stack.segmind.failNextJob('nope');
    const failed = await extend(stack, { prompt: 'fails, costs nothing' }, key);
    expect((await waitForTerminal(stack, failed, key)).status).toBe('FAILED');
    const spent = { generationsStarted: 2, estimatedSpentUsd: 1, budgetRemainingUsd: 3 };
    expect((await viewer()).usageToday).toMatchObject(spent);

    // Deleting work does not give back budget.
    for (const id of [big, failed]) expect((await stack.execute(DeleteGenerationDocument, { id }, key)).data!.deleteGeneration.__typename).toBe('DeleteGenerationSuccess');
    expect((await viewer()).usageToday).toMatchObject(spent);
    // $1 of the $4 is gone for the day, deleted or not: three more dollars fit, a fourth does not.
    for (const prompt of ['a second dollar', 'a third dollar', 'a fourth dollar']) await extend(stack, { quality: 'Q720P', duration: 8, prompt }, key);
    const refused = (await stack.execute(ExtendVideoBriefDocument, { input: { ...base, quality: 'Q720P', duration: 8 } }, key)).data!.extendVideo;
    expect(refused).toMatchObject({ __typename: 'InsufficientCreditsError', creditLimit: 'DAILY_BUDGET', availableUsd: 0 });
    expect((await viewer()).usageToday).toMatchObject({ generationsStarted: 5, estimatedSpentUsd: 4, budgetRemainingUsd: 0 });
  });

  it('shows no budget when DAILY_BUDGET_USD is unset, and still counts the day', async () => {
    const unbudgeted = await startStack();
    try {
      const id = await extend(unbudgeted, { quality: 'Q360P' });
      await waitForTerminal(unbudgeted, id);
      const viewer = (await unbudgeted.execute(ViewerDocument, {})).data!.viewer;
      expect(viewer.limits.dailyBudgetUsd).toBeNull();
      expect(viewer.usageToday).toMatchObject({ generationsStarted: 1, estimatedSpentUsd: 0.375, budgetRemainingUsd: null });
    } finally {
      await unbudgeted.close();
    }
  });
});

describe('deleteGeneration', () => {
  it('removes the row and the stored MP4, after which the video URL answers 404 and a second delete NotFoundError', async () => {
    const id = await extend(stack, { prompt: 'to be deleted' });
    await waitForTerminal(stack, id);
    const file = await storedFile(stack, id);
    expect(await exists(file.path)).toBe(true);
    expect((await fetch(file.url)).status).toBe(200);

    expect((await stack.execute(DeleteGenerationDocument, { id })).data!.deleteGeneration).toEqual({ __typename: 'DeleteGenerationSuccess', deletedId: id });
    expect((await stack.execute(GenerationDocument, { id })).data!.generation).toBeNull();
    expect(await stack.app.db.generation.findUnique({ where: { id: rawId(id) } })).toBeNull();
    expect(await stack.app.db.video.count({ where: { generationId: rawId(id) } })).toBe(0);
    expect(await exists(file.path)).toBe(false);
    expect((await fetch(file.url)).status).toBe(404);

    expect((await stack.execute(DeleteGenerationDocument, { id })).data!.deleteGeneration).toMatchObject({ __typename: 'NotFoundError', id });
  });

  it('refuses a generation that is still running, with its status', async () => {
    const idle = await startStack({ worker: false });
    try {
      const id = await extend(idle, {});
      expect((await idle.execute(DeleteGenerationDocument, { id })).data!.deleteGeneration).toMatchObject({ __typename: 'NotDeletableError', id, status: 'QUEUED' });
      expect(await idle.app.db.generation.count()).toBe(1);
    } finally {
      await idle.close();
    }
  });

  it('refuses a generation that others extend, naming how many, until they are deleted', async () => {
    const source = await extend(stack, { prompt: 'source of two' });
    await waitForTerminal(stack, source);
    const extensions = [await extend(stack, { videoUrl: null, sourceGenerationId: source }), await extend(stack, { videoUrl: null, sourceGenerationId: source })];
    for (const id of extensions) await waitForTerminal(stack, id);
    const file = await storedFile(stack, source);

    expect((await stack.execute(DeleteGenerationDocument, { id: source })).data!.deleteGeneration).toMatchObject({
      __typename: 'HasExtensionsError',
      id: source,
      extensionCount: 2,
    });
    expect(await exists(file.path)).toBe(true);
    for (const id of extensions) expect((await stack.execute(DeleteGenerationDocument, { id })).data!.deleteGeneration.__typename).toBe('DeleteGenerationSuccess');
    expect((await stack.execute(DeleteGenerationDocument, { id: source })).data!.deleteGeneration.__typename).toBe('DeleteGenerationSuccess');
    expect(await exists(file.path)).toBe(false);
  });

  it("answers NotFoundError for another key's generation and leaves it whole", async () => {
    const id = await extend(stack, { prompt: 'not yours to delete' });
    await waitForTerminal(stack, id);
    const other = await stack.newKey('someone else');
    expect((await stack.execute(DeleteGenerationDocument, { id }, other)).data!.deleteGeneration).toMatchObject({ __typename: 'NotFoundError', id });
    const file = await storedFile(stack, id);
    expect(await exists(file.path)).toBe(true);
    expect((await stack.execute(GenerationDocument, { id })).data!.generation!.video).not.toBeNull();
  });
});

describe('VIDEO_RETENTION_DAYS', () => {
  it('removes the stored videos of generations finished longer ago and says so on the generation, keeping the row', async () => {
    const kept = await startStack({ env: { VIDEO_RETENTION_DAYS: '3', VIDEO_RETENTION_SWEEP_INTERVAL_MS: '200' } });
    try {
      const old = await extend(kept, { prompt: 'finished four days ago' });
      const recent = await extend(kept, { prompt: 'finished two days ago' });
      const oldDone = await waitForTerminal(kept, old);
      await waitForTerminal(kept, recent);
      const [oldFile, recentFile] = [await storedFile(kept, old), await storedFile(kept, recent)];
      const daysAgo = (days: number) => new Date(Date.now() - days * 24 * 60 * 60_000);
      const oldCompletedAt = daysAgo(4);
      await kept.app.db.generation.update({ where: { id: rawId(old) }, data: { completedAt: oldCompletedAt } });
      await kept.app.db.generation.update({ where: { id: rawId(recent) }, data: { completedAt: daysAgo(2) } });

      let expired = (await kept.execute(GenerationRetentionDocument, { id: old })).data!.generation!;
      for (let attempt = 0; attempt < 100 && expired.video; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        expired = (await kept.execute(GenerationRetentionDocument, { id: old })).data!.generation!;
      }
      expect(expired).toMatchObject({ status: 'SUCCEEDED', video: null, completedAt: oldCompletedAt.toISOString() });
      expect(expired.videoExpiredAt).not.toBeNull();
      expect(expired.estimatedCost).toBe(0.375);
      expect(await exists(oldFile.path)).toBe(false);
      expect((await fetch(oldFile.url)).status).toBe(404);
      expect(oldDone.video).not.toBeNull();

      const stillThere = (await kept.execute(GenerationRetentionDocument, { id: recent })).data!.generation!;
      expect(stillThere).toMatchObject({ videoExpiredAt: null, video: { url: recentFile.url } });
      expect(await exists(recentFile.path)).toBe(true);
      expect(kept.logs.some((line) => line.includes('removed expired videos'))).toBe(true);

      // Its video is gone, so it can no longer be extended; the answer says why.
      const chained = (await kept.execute(ExtendVideoDocument, { input: { ...base, videoUrl: null, sourceGenerationId: old } })).data!.extendVideo;
      expect(chained).toMatchObject({ __typename: 'InvalidInputError', fields: [{ path: ['input', 'sourceGenerationId'], message: expect.stringContaining('VIDEO_RETENTION_DAYS') }] });
      expect(submissions(kept)).toHaveLength(2);
    } finally {
      await kept.close();
    }
  });
});

describe('retention and chains', () => {
  it('keeps an expired source video while a generation is extending it, and removes it once that one ended', async () => {
    // No periodic sweep here: the test runs it at the moments it means to.
    const slow = await startStack({ segmind: { processingMs: 800 } });
    try {
      const source = await extend(slow, { prompt: 'old source' });
      await waitForTerminal(slow, source);
      const file = await storedFile(slow, source);
      await slow.app.db.generation.update({ where: { id: rawId(source) }, data: { completedAt: new Date(Date.now() - 10 * 24 * 60 * 60_000) } });
      const extension = await extend(slow, { videoUrl: null, sourceGenerationId: source, prompt: 'extends the old source' });
      const deps = { db: slow.app.db, storage: new LocalVideoStorage(slow.config.storageDir) };

      expect(await removeExpiredVideos(deps, { videoDays: 3 })).toBe(0);
      expect(await exists(file.path)).toBe(true);
      expect((await waitForTerminal(slow, extension)).status).toBe('SUCCEEDED');

      expect(await removeExpiredVideos(deps, { videoDays: 3 })).toBe(1);
      expect(await exists(file.path)).toBe(false);
      expect((await slow.execute(GenerationRetentionDocument, { id: source })).data!.generation).toMatchObject({ video: null, videoExpiredAt: expect.any(String) });
      expect((await slow.execute(GenerationRetentionDocument, { id: extension })).data!.generation).toMatchObject({ video: { url: expect.any(String) }, videoExpiredAt: null });
    } finally {
      await slow.close();
    }
  });
});

describe('deleting a source while it is being extended', () => {
  it('the extension that loses the race answers NotFoundError and records nothing', async () => {
    const source = await extend(stack, { prompt: 'deleted mid-extension' });
    await waitForTerminal(stack, source);
    const submitted = submissions(stack).length;
    // A deletion that has begun but not committed: the extension's lookup still sees the source,
    // and its insert waits on the row lock until the deletion commits.
    const client = new pg.Client({ connectionString: stack.app.databaseUrl });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('DELETE FROM "Video" WHERE "generationId" = $1', [rawId(source)]);
      await client.query('DELETE FROM "Generation" WHERE id = $1', [rawId(source)]);
      const racing = stack.execute(ExtendVideoDocument, { input: { ...base, videoUrl: null, sourceGenerationId: source, prompt: 'too late' } });
      for (let attempt = 0; attempt < 100; attempt++) {
        // Asked on another connection: a transaction sees pg_stat_activity as of its first look.
        const waiting = await stack.app.db.$queryRaw<unknown[]>`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO "Generation"%'`;
        if (waiting.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await client.query('COMMIT');
      const result = await racing;
      expect(result.errors).toBeUndefined();
      expect(result.data!.extendVideo).toMatchObject({ __typename: 'NotFoundError', id: source });
    } finally {
      await client.end();
    }
    expect(await stack.app.db.generation.count({ where: { prompt: 'too late' } })).toBe(0);
    expect(submissions(stack)).toHaveLength(submitted);
  });
});

describe('what deleted generations leave behind', () => {
  it('keeps only what the limits count, for two days: older records go at the next deletion', async () => {
    const key = await stack.newKey('tombstones');
    const keyId = (await stack.app.db.apiKey.findFirstOrThrow({ where: { name: 'tombstones' } })).id;
    const ids = [await extend(stack, { prompt: 'secret prompt one' }, key), await extend(stack, { prompt: 'secret prompt two' }, key)];
    for (const id of ids) await waitForTerminal(stack, id, key);
    await stack.execute(DeleteGenerationDocument, { id: ids[0]! }, key);
    const left = await stack.app.db.deletedGeneration.findMany({ where: { apiKeyId: keyId } });
    expect(left).toEqual([expect.objectContaining({ id: rawId(ids[0]!), quality: 'Q540P', duration: 5, billable: true })]);
    expect(JSON.stringify(left)).not.toContain('secret prompt');

    await stack.app.db.deletedGeneration.update({ where: { id: rawId(ids[0]!) }, data: { createdAt: new Date(Date.now() - 3 * 24 * 60 * 60_000) } });
    await stack.execute(DeleteGenerationDocument, { id: ids[1]! }, key);
    expect((await stack.app.db.deletedGeneration.findMany({ where: { apiKeyId: keyId } })).map((row) => row.id)).toEqual([rawId(ids[1]!)]);
  });
});
