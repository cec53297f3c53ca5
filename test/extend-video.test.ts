import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpeg from '@ffmpeg-installer/ffmpeg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, GenerationDocument, GenerationUpdatedDocument } from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.close());

async function extend(input: Parameters<Stack['execute']>[1] extends never ? never : Record<string, unknown>, key?: string) {
  const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/clip.mp4', prompt: 'waves roll in', ...input } as never }, key);
  expect(result.errors).toBeUndefined();
  return result.data!.extendVideo;
}

describe('extendVideo end to end', () => {
  it('returns QUEUED at once, then succeeds with a stored, downloadable MP4 of the requested size', async () => {
    const accepted = await extend({ quality: 'Q720P', duration: 8, seed: 42, negativePrompt: 'no zoom', style: 'CLAY' });
    expect(accepted.__typename).toBe('ExtendVideoSuccess');
    if (accepted.__typename !== 'ExtendVideoSuccess') return;
    expect(accepted.generation).toMatchObject({
      status: 'QUEUED',
      quality: 'Q720P',
      duration: 8,
      motionMode: 'NORMAL',
      seed: 42,
      style: 'CLAY',
      negativePrompt: 'no zoom',
      sourceVideoUrl: 'https://videos.example/clip.mp4',
      video: null,
    });

    const done = await waitForTerminal(stack, accepted.generation.id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.error).toBeNull();
    expect(done.cost).toBe(1);
    expect(done.startedAt).not.toBeNull();
    expect(done.completedAt).not.toBeNull();
    expect(done.video).toMatchObject({ contentType: 'video/mp4', width: 1280, height: 720 });
    expect(done.video!.durationSeconds).toBeCloseTo(8, 0);
    expect(done.video!.url).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]{22}\\.mp4$`));

    const response = await fetch(done.video!.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('video/mp4');
    expect(response.headers.get('etag')).toBe(`"${done.video!.sha256}"`);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBe(done.video!.byteSize);
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(done.video!.sha256);
    // Playable: ffmpeg decodes every frame without complaint.
    const file = join(tmpdir(), `extendql-${done.video!.sha256}.mp4`);
    await writeFile(file, bytes);
    const decoded = await promisify(execFile)(ffmpeg.path, ['-v', 'error', '-i', file, '-f', 'null', '-']);
    expect(decoded.stderr).toBe('');

    const ranged = await fetch(done.video!.url, { headers: { range: 'bytes=0-99' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 0-99/${bytes.length}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(bytes.subarray(0, 100));
    expect(submissions(stack)).toHaveLength(1);
  });

  it('reports a failed upstream job as a typed GenerationError with Segmind message and status', async () => {
    stack.segmind.failNextJob('Source video could not be decoded');
    const accepted = await extend({});
    if (accepted.__typename !== 'ExtendVideoSuccess') throw new Error(accepted.__typename);
    const done = await waitForTerminal(stack, accepted.generation.id);
    expect(done.status).toBe('FAILED');
    expect(done.error).toEqual({ code: 'GENERATION_FAILED', message: 'Source video could not be decoded', upstreamStatus: 422 });
    expect(done.video).toBeNull();
  });

  it('streams status changes over SSE until the terminal state', async () => {
    const accepted = await extend({});
    if (accepted.__typename !== 'ExtendVideoSuccess') throw new Error(accepted.__typename);
    const events = await stack.subscribe(GenerationUpdatedDocument, { id: accepted.generation.id });
    if (!(Symbol.asyncIterator in events)) throw new Error(`not a stream: ${JSON.stringify(events)}`);
    const statuses: string[] = [];
    for await (const event of events) {
      expect(event.errors).toBeUndefined();
      statuses.push(event.data!.generationUpdated.status);
    }
    // The stream ends by itself after SUCCEEDED; each status appears in order.
    expect(statuses.at(-1)).toBe('SUCCEEDED');
    expect(statuses[0]).toMatch(/QUEUED|RUNNING/);
    const order = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    const indices = statuses.map((status) => order.indexOf(status));
    expect(indices).toEqual([...indices].sort());
  });

  it('chains: sourceGenerationId extends an earlier output through our own public video URL', async () => {
    const first = await extend({});
    if (first.__typename !== 'ExtendVideoSuccess') throw new Error(first.__typename);
    const firstDone = await waitForTerminal(stack, first.generation.id);

    const second = await extend({ videoUrl: null, sourceGenerationId: first.generation.id, prompt: 'and then night falls' });
    if (second.__typename !== 'ExtendVideoSuccess') throw new Error(second.__typename);
    expect(second.generation.source).toEqual({ id: first.generation.id });
    expect(second.generation.sourceVideoUrl).toBe(firstDone.video!.url);
    const secondDone = await waitForTerminal(stack, second.generation.id);
    expect(secondDone.status).toBe('SUCCEEDED');
    const sent = submissions(stack).at(-1)!.body as Record<string, unknown>;
    expect(sent.video_url).toBe(firstDone.video!.url);
    // Segmind must be able to fetch that URL without our API key.
    const asSegmind = await fetch(sent.video_url as string);
    expect(asSegmind.status).toBe(200);
  });

  it("chaining without a quality keeps the source's quality; a given quality still wins", async () => {
    const first = await extend({ quality: 'Q720P', prompt: 'a 720p source' });
    if (first.__typename !== 'ExtendVideoSuccess') throw new Error(first.__typename);
    await waitForTerminal(stack, first.generation.id);

    const kept = await extend({ videoUrl: null, sourceGenerationId: first.generation.id, prompt: 'keeps 720p' });
    if (kept.__typename !== 'ExtendVideoSuccess') throw new Error(kept.__typename);
    expect(kept.generation.quality).toBe('Q720P');
    await waitForTerminal(stack, kept.generation.id);
    expect(submissions(stack).find((r) => (r.body as { prompt: string }).prompt === 'keeps 720p')!.body).toMatchObject({ quality: '720p' });

    const lowered = await extend({ videoUrl: null, sourceGenerationId: first.generation.id, quality: 'Q360P', prompt: 'asks for 360p' });
    expect(lowered).toMatchObject({ __typename: 'ExtendVideoSuccess', generation: { quality: 'Q360P' } });
    // Not chained, nothing given: Q540P as before.
    expect(await extend({ prompt: 'plain default' })).toMatchObject({ __typename: 'ExtendVideoSuccess', generation: { quality: 'Q540P' } });
  });

  it("the contract's rules judge the source's quality once it is filled in: a Q1080P source refuses 8 s, and FAST refuses 8 s", async () => {
    const source = await extend({ quality: 'Q1080P', prompt: 'a 1080p source' });
    if (source.__typename !== 'ExtendVideoSuccess') throw new Error(source.__typename);
    await waitForTerminal(stack, source.generation.id);
    const before = submissions(stack).length;

    const eight = await extend({ videoUrl: null, sourceGenerationId: source.generation.id, duration: 8 });
    expect(eight).toMatchObject({ __typename: 'InvalidInputError', fields: [{ path: ['input', 'duration'], message: 'Q1080P quality requires a duration of 5 seconds' }] });
    const fast = await extend({ videoUrl: null, sourceGenerationId: source.generation.id, duration: 8, motionMode: 'FAST' });
    if (fast.__typename !== 'InvalidInputError') throw new Error(fast.__typename);
    expect(fast.fields).toEqual(
      expect.arrayContaining([
        { path: ['input', 'duration'], message: 'FAST motion requires a duration of 5 seconds' },
        { path: ['input', 'duration'], message: 'Q1080P quality requires a duration of 5 seconds' },
        { path: ['input', 'motionMode'], message: 'Q1080P quality requires NORMAL motion' },
      ]),
    );
    expect(await stack.app.db.generation.count({ where: { sourceId: decodeGlobalID(source.generation.id).id } })).toBe(0);
    expect(submissions(stack)).toHaveLength(before);
  });

  it("an idempotency key sees the filled-in quality: naming the source's quality replays, naming another conflicts", async () => {
    const source = await extend({ quality: 'Q720P', prompt: 'idempotent chain source' });
    if (source.__typename !== 'ExtendVideoSuccess') throw new Error(source.__typename);
    await waitForTerminal(stack, source.generation.id);
    const chained = { videoUrl: null, sourceGenerationId: source.generation.id, prompt: 'chained once', idempotencyKey: 'chain-quality-1' };

    const first = await extend(chained);
    if (first.__typename !== 'ExtendVideoSuccess') throw new Error(first.__typename);
    const same = await extend({ ...chained, quality: 'Q720P' });
    expect(same).toMatchObject({ __typename: 'ExtendVideoSuccess', generation: { id: first.generation.id } });
    expect(await extend({ ...chained, quality: 'Q540P' })).toMatchObject({ __typename: 'IdempotencyConflictError', idempotencyKey: 'chain-quality-1' });
  });

  it('refuses to chain from a generation that has no video yet', async () => {
    stack.segmind.failNextJob('nope');
    const failed = await extend({});
    if (failed.__typename !== 'ExtendVideoSuccess') throw new Error(failed.__typename);
    await waitForTerminal(stack, failed.generation.id);
    const before = submissions(stack).length;
    const chained = await extend({ videoUrl: null, sourceGenerationId: failed.generation.id });
    expect(chained).toMatchObject({ __typename: 'InvalidInputError', fields: [{ path: ['input', 'sourceGenerationId'] }] });
    expect(submissions(stack)).toHaveLength(before);
  });

  it('answers a missing source with NotFoundError', async () => {
    const result = await extend({ videoUrl: null, sourceGenerationId: '01936b2e-0000-7000-8000-000000000000' });
    expect(result).toMatchObject({ __typename: 'NotFoundError', id: '01936b2e-0000-7000-8000-000000000000' });
  });

  it('returns InsufficientCreditsError before submitting when the balance cannot pay', async () => {
    const other = await startStack({ segmind: { credits: 0.3 } });
    try {
      const result = await other.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'x' } });
      expect(result.data!.extendVideo).toMatchObject({ __typename: 'InsufficientCreditsError', requiredUsd: 0.375, availableUsd: 0.3 });
      expect(submissions(other)).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('replays an idempotency key with the same parameters and rejects it with different ones', async () => {
    const input = { idempotencyKey: 'order-17' };
    const first = await extend(input);
    const again = await extend(input);
    if (first.__typename !== 'ExtendVideoSuccess' || again.__typename !== 'ExtendVideoSuccess') throw new Error('expected success');
    expect(again.generation.id).toBe(first.generation.id);
    const conflict = await extend({ ...input, prompt: 'something else' });
    expect(conflict).toMatchObject({ __typename: 'IdempotencyConflictError', idempotencyKey: 'order-17' });
    await waitForTerminal(stack, first.generation.id);
    expect(submissions(stack).filter((r) => (r.body as { prompt?: string }).prompt === 'waves roll in').length).toBeGreaterThan(0);
  });

  it('concurrent duplicates with one idempotency key make one generation and one submission', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => extend({ idempotencyKey: 'burst-1', prompt: 'once only' })));
    const ids = new Set(results.map((r) => (r.__typename === 'ExtendVideoSuccess' ? r.generation.id : r.__typename)));
    expect([...ids]).toHaveLength(1);
    const [id] = [...ids];
    await waitForTerminal(stack, id!);
    expect(submissions(stack).filter((r) => (r.body as { prompt?: string }).prompt === 'once only')).toHaveLength(1);
    // Another key may use the same idempotency key independently.
    const other = await stack.newKey('other');
    const theirs = await extend({ idempotencyKey: 'burst-1', prompt: 'once only' }, other);
    expect(theirs.__typename === 'ExtendVideoSuccess' && theirs.generation.id).not.toBe(id);
  });

  it('answers a request without a valid key with a 401 UNAUTHENTICATED error', async () => {
    for (const key of [null, 'xq_not-a-real-key']) {
      const response = await fetch(stack.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key && { 'x-api-key': key }) },
        body: JSON.stringify({ query: '{ generations(first: 1) { totalCount } }' }),
      });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    }
    const result = await stack.execute(GenerationDocument, { id: 'x' }, null);
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('never lets the Segmind key out: not in responses, logs, or error messages', async () => {
    const everything = JSON.stringify(await stack.execute(GenerationDocument, { id: 'x' })) + stack.logs.join('\n');
    expect(everything).not.toContain(stack.segmindKey);
    // It did go where it belongs.
    expect(submissions(stack).every((r) => r.headers['x-api-key'] === stack.segmindKey)).toBe(true);
  });
});
