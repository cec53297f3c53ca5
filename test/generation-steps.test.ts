import { Prisma } from '../src/generated/prisma/client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Database } from '../src/db/client.ts';
import { claimSubmission, readGeneration, readOwnGeneration, recordPoll, recordRequestId, recordSuccess, recordUpstreamStatus } from '../src/db/generations.ts';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startStack, type Stack } from './helpers/stack.ts';

// The worker's status polls read and write the row through `pg` directly (src/db/generations.ts).
// What they read must be what Prisma reads, field by field, and what they write what Prisma would.

let stack: Stack;
let database: Database;

beforeAll(async () => {
  // No worker: the row stays as this test writes it.
  stack = await startStack({ worker: false });
  database = openDb(stack.app.databaseUrl, { max: 2 });
});
afterAll(async () => {
  await database?.close();
  await stack?.close();
});

async function newGeneration(prompt: string): Promise<string> {
  const result = await stack.execute(
    ExtendVideoDocument,
    { input: { videoUrl: `${stack.app.url}/samples/beach.mp4`, prompt, negativePrompt: 'blur', seed: 42, quality: 'Q540P', duration: 8 } },
  );
  expect(result.data?.extendVideo.__typename).toBe('ExtendVideoSuccess');
  return (await stack.app.db.generation.findFirstOrThrow({ where: { prompt }, select: { id: true } })).id;
}

describe('the statements of a generation step', () => {
  it('read the row exactly as Prisma does: every column, Dates, Decimal and nulls', async () => {
    const id = await newGeneration('read like prisma');
    await stack.app.db.generation.update({
      where: { id },
      data: {
        status: 'RUNNING',
        upstreamRequestId: `req-${id}`,
        upstreamStatus: 'QUEUED',
        cost: new Prisma.Decimal('0.123456'),
        retryCode: 'UPSTREAM_UNAVAILABLE',
        retryMessage: 'Segmind answered 503',
        retryAt: new Date('2026-11-27T10:11:12.345Z'),
        startedAt: new Date('2026-11-27T10:00:00.001Z'),
      },
    });
    const ours = await readGeneration(database.pool, id);
    const prismas = await stack.app.db.generation.findUnique({ where: { id } });
    expect(ours).toEqual(prismas);
    expect(Object.keys(ours!).sort()).toEqual(Object.keys(prismas!).sort());
    expect(ours!.cost).toBeInstanceOf(Prisma.Decimal);
    expect(ours!.cost!.toString()).toBe('0.123456');
    expect(ours!.retryAt!.toISOString()).toBe('2026-11-27T10:11:12.345Z');
    expect(await readGeneration(database.pool, 'no-such-generation')).toBeNull();
    // The key's own read: the same row for its key, nothing for another key's id.
    expect(await readOwnGeneration(database.pool, prismas!.apiKeyId, id)).toEqual(prismas);
    const otherKey = await stack.app.db.apiKey.findFirstOrThrow({ where: { id: { not: prismas!.apiKeyId } } }).catch(() => null);
    expect(await readOwnGeneration(database.pool, otherKey?.id ?? 'another key', id)).toBeNull();
  });

  it('record a poll as Prisma would: the status, one more poll, no retry pending, updatedAt in UTC', async () => {
    const id = await newGeneration('record a poll');
    await stack.app.db.generation.update({ where: { id }, data: { status: 'RUNNING', pollCount: 3, retryCount: 2, retryCode: 'UPSTREAM_TIMEOUT', retryMessage: 'slow', retryAt: new Date() } });
    const at = new Date('2026-11-27T12:34:56.789Z');
    await recordPoll(database.pool, id, 'PROCESSING', at);
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ upstreamStatus: 'PROCESSING', pollCount: 4, retryCount: 0, retryCode: null, retryMessage: null, retryAt: null, status: 'RUNNING' });
    expect(row.updatedAt.toISOString()).toBe(at.toISOString());
  });

  it('claim a submission once: the first claim wins, later ones and ended generations get false', async () => {
    const id = await newGeneration('claim once');
    const at = new Date('2026-11-27T08:00:00.000Z');
    const claims = await Promise.all([claimSubmission(database.pool, id, at), claimSubmission(database.pool, id, at)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ status: 'RUNNING', submitStartedAt: at, startedAt: at, updatedAt: at });
    const ended = await newGeneration('claim an ended one');
    await stack.app.db.generation.update({ where: { id: ended }, data: { status: 'CANCELED' } });
    expect(await claimSubmission(database.pool, ended)).toBe(false);
    expect((await stack.app.db.generation.findUniqueOrThrow({ where: { id: ended } })).submitStartedAt).toBeNull();
  });

  it('record the request_id and Segmind\'s status, clearing a pending retry', async () => {
    const id = await newGeneration('request id');
    await stack.app.db.generation.update({ where: { id }, data: { status: 'RUNNING', retryCount: 1, retryCode: 'UPSTREAM_TIMEOUT', retryMessage: 'slow', retryAt: new Date() } });
    await recordRequestId(database.pool, id, `req-${id}`, 'QUEUED');
    expect(await stack.app.db.generation.findUniqueOrThrow({ where: { id } })).toMatchObject({ upstreamRequestId: `req-${id}`, upstreamStatus: 'QUEUED', retryCount: 0, retryCode: null, retryAt: null });
    await recordUpstreamStatus(database.pool, id, 'COMPLETED');
    expect((await stack.app.db.generation.findUniqueOrThrow({ where: { id } })).upstreamStatus).toBe('COMPLETED');
  });

  it('record a success and its video in one statement, only while the generation is RUNNING', async () => {
    const id = await newGeneration('succeed');
    const planned = (await stack.app.db.generation.findUniqueOrThrow({ where: { id } })).plannedVideoId;
    await stack.app.db.generation.update({ where: { id }, data: { status: 'RUNNING', retryCode: 'STORAGE_UNAVAILABLE', retryMessage: 'disk full', retryAt: new Date(), retryCount: 2 } });
    const video = { id: planned, storageKey: `${planned}.mp4`, contentType: 'video/mp4', byteSize: 12345, width: 960, height: 540, durationSeconds: 8.04, sha256: 'ab'.repeat(32) };
    const at = new Date('2026-11-27T09:30:00.123Z');
    expect(await recordSuccess(database.pool, id, video, 0.4, at)).toBe(true);
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id }, include: { video: true } });
    expect(row).toMatchObject({ status: 'SUCCEEDED', upstreamStatus: 'COMPLETED', completedAt: at, updatedAt: at, retryCount: 0, retryCode: null, retryMessage: null, retryAt: null });
    expect(row.cost?.toString()).toBe('0.4');
    expect(row.video).toEqual({ ...video, generationId: id, createdAt: at });
    // Ended: a second success (another step's) writes nothing.
    expect(await recordSuccess(database.pool, id, { ...video, id: `${planned}-other` }, undefined)).toBe(false);
    expect(await stack.app.db.video.count({ where: { generationId: id } })).toBe(1);

    // Canceled meanwhile: no video row, and the generation stays CANCELED with its cost untouched.
    const canceled = await newGeneration('succeed after cancel');
    await stack.app.db.generation.update({ where: { id: canceled }, data: { status: 'CANCELED', cost: new Prisma.Decimal('0.1') } });
    const other = (await stack.app.db.generation.findUniqueOrThrow({ where: { id: canceled } })).plannedVideoId;
    expect(await recordSuccess(database.pool, canceled, { ...video, id: other, storageKey: `${other}.mp4` }, 0.4)).toBe(false);
    expect(await stack.app.db.generation.findUniqueOrThrow({ where: { id: canceled }, include: { video: true } })).toMatchObject({ status: 'CANCELED', video: null });
    expect((await stack.app.db.generation.findUniqueOrThrow({ where: { id: canceled } })).cost?.toString()).toBe('0.1');

    // No cost from Segmind: the recorded one is kept.
    const keeps = await newGeneration('succeed keeps cost');
    await stack.app.db.generation.update({ where: { id: keeps }, data: { status: 'RUNNING', cost: new Prisma.Decimal('0.25') } });
    const third = (await stack.app.db.generation.findUniqueOrThrow({ where: { id: keeps } })).plannedVideoId;
    expect(await recordSuccess(database.pool, keeps, { ...video, id: third, storageKey: `${third}.mp4` }, undefined)).toBe(true);
    expect((await stack.app.db.generation.findUniqueOrThrow({ where: { id: keeps } })).cost?.toString()).toBe('0.25');
  });
});
