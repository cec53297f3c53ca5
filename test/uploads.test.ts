import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeExpiredVideos } from '../src/generations/cleanup.js';
import { LocalVideoStorage } from '../src/storage/storage.js';
import { DeleteGenerationDocument, ExtendUploadedVideoDocument } from './gql/graphql.js';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.js';

/** Encodes a small test video with ffmpeg (the same binary the simulator uses). */
function encode(out: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegInstaller.path, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${stderr}`))));
  });
}
const testsrc = (size: string, seconds: number, rate = 10) => [
  '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`, '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
];

let stack: Stack;
let dir: string;
const media: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extendql-uploads-'));
  const make = async (name: string, args: string[]) => {
    await encode(join(dir, name), args);
    media[name] = await readFile(join(dir, name));
  };
  await Promise.all([
    make('ok.mp4', [...testsrc('320x180', 2), '-movflags', '+faststart', '-f', 'mp4']),
    make('ok.mov', [...testsrc('320x180', 2), '-f', 'mov']),
    make('long.mp4', [...testsrc('64x36', 31, 2), '-f', 'mp4']),
    make('wide.mp4', [...testsrc('2560x1440', 1, 2), '-f', 'mp4']),
    make('tall.mp4', [...testsrc('1080x1928', 1, 2), '-f', 'mp4']),
  ]);
  // Segmind fetches the source itself: the fake does too, so the served upload must really work.
  stack = await startStack({ segmind: { fetchSources: true } });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

const file = (bytes: Buffer, name: string, type = 'video/mp4') => new File([new Uint8Array(bytes)], name, { type });
const sha256 = (bytes: Buffer | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function recorded() {
  const [generations, uploads] = await Promise.all([stack.app.db.generation.count(), stack.app.db.sourceUpload.count()]);
  return { generations, uploads };
}

async function expectRefused(bytes: Buffer, name: string, message: RegExp) {
  const before = await recorded();
  const submitted = submissions(stack).length;
  const result = await stack.execute(ExtendUploadedVideoDocument, { video: file(bytes, name), prompt: 'keep going' });
  expect(result.errors).toBeUndefined();
  const answer = result.data!.extendVideo;
  expect(answer.__typename).toBe('InvalidInputError');
  if (answer.__typename !== 'InvalidInputError') return;
  expect(answer.fields).toEqual([{ path: ['input', 'video'], message: expect.stringMatching(message) }]);
  // Nothing recorded, nothing stored, nothing spent.
  expect(await recorded()).toEqual(before);
  expect(submissions(stack).length).toBe(submitted);
}

describe('extendVideo with an uploaded video', () => {
  it('stores the upload, serves it at a public URL, hands that URL to Segmind and succeeds', async () => {
    const result = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mp4']!, 'ok.mp4'), prompt: 'the camera pans left' });
    expect(result.errors).toBeUndefined();
    const answer = result.data!.extendVideo;
    expect(answer.__typename).toBe('ExtendVideoSuccess');
    if (answer.__typename !== 'ExtendVideoSuccess') return;
    const sourceUrl = answer.generation.sourceVideoUrl;
    expect(sourceUrl).toMatch(new RegExp(`^${stack.app.publicBaseUrl}/videos/[A-Za-z0-9_-]+\\.mp4$`));

    // Served byte for byte, with ranges, like any stored video.
    const served = await fetch(sourceUrl);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('video/mp4');
    expect(sha256(new Uint8Array(await served.arrayBuffer()))).toBe(sha256(media['ok.mp4']!));
    const ranged = await fetch(sourceUrl, { headers: { range: 'bytes=4-7' } });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe('ftyp');

    const done = await waitForTerminal(stack, answer.generation.id);
    expect(done.status).toBe('SUCCEEDED');
    const submission = submissions(stack).find((r) => (r.body as { video_url?: string }).video_url === sourceUrl);
    expect(submission).toBeDefined();
    expect(stack.segmind.fetchedSources).toContain(sourceUrl);

    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id: decodeGlobalID(answer.generation.id).id }, include: { sourceUpload: true } });
    expect(row.sourceUpload).toMatchObject({ contentType: 'video/mp4', width: 320, height: 180, byteSize: media['ok.mp4']!.length, sha256: sha256(media['ok.mp4']!) });
    expect(row.sourceUpload!.durationSeconds).toBeCloseTo(2, 1);
  });

  it('accepts MOV and serves it as video/quicktime', async () => {
    const result = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mov']!, 'clip.mov', 'video/quicktime'), prompt: 'slow zoom' });
    const answer = result.data!.extendVideo;
    expect(answer.__typename).toBe('ExtendVideoSuccess');
    if (answer.__typename !== 'ExtendVideoSuccess') return;
    expect(answer.generation.sourceVideoUrl).toMatch(/\.mov$/);
    const served = await fetch(answer.generation.sourceVideoUrl);
    expect(served.headers.get('content-type')).toBe('video/quicktime');
    expect((await waitForTerminal(stack, answer.generation.id)).status).toBe('SUCCEEDED');
  });

  it('the same idempotency key and the same file replay; another file under that key conflicts', async () => {
    const idempotencyKey = `upload-${randomBytes(4).toString('hex')}`;
    const first = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mp4']!, 'a.mp4'), prompt: 'again', idempotencyKey });
    const uploadsAfterFirst = await stack.app.db.sourceUpload.count();
    const replay = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mp4']!, 'b.mp4'), prompt: 'again', idempotencyKey });
    const [a, b] = [first.data!.extendVideo, replay.data!.extendVideo];
    if (a.__typename !== 'ExtendVideoSuccess' || b.__typename !== 'ExtendVideoSuccess') throw new Error(`${a.__typename} / ${b.__typename}`);
    // The same generation (it may have moved on from QUEUED in between).
    expect(b.generation.id).toBe(a.generation.id);
    expect(b.generation.sourceVideoUrl).toBe(a.generation.sourceVideoUrl);
    expect(await stack.app.db.sourceUpload.count()).toBe(uploadsAfterFirst);
    const conflict = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mov']!, 'c.mov'), prompt: 'again', idempotencyKey });
    expect(conflict.data!.extendVideo.__typename).toBe('IdempotencyConflictError');
  });

  it('refuses videos longer than 30 s, naming the limit', async () => {
    await expectRefused(media['long.mp4']!, 'long.mp4', /^must be at most 30 seconds long \(it is 31\.\d s\)$/);
  });

  it('refuses frames wider or taller than 1920 px, naming the limit', async () => {
    await expectRefused(media['wide.mp4']!, 'wide.mp4', /^must be at most 1920 px wide \(it is 2560 px\)$/);
    await expectRefused(media['tall.mp4']!, 'tall.mp4', /^must be at most 1920 px high \(it is 1928 px\)$/);
  });

  it('refuses files that are not MP4 or MOV, and truncated ones', async () => {
    await expectRefused(Buffer.from('GIF89a not a video at all'), 'x.mp4', /^must be an MP4 or MOV file/);
    await expectRefused(media['ok.mp4']!.subarray(0, Math.floor(media['ok.mp4']!.length / 2)), 'half.mp4', /^must be an MP4 or MOV file \(truncated/);
  });

  it('refuses files over 50 MB with a typed error, and bodies past the upload limit unread', async () => {
    const big = Buffer.alloc(50 * 1024 * 1024 + 1);
    media['ok.mp4']!.copy(big);
    await expectRefused(big, 'big.mp4', /^must be at most 50 MB \(it is 50\.0 MB\)$/);

    // Far larger bodies are not read at all: HTTP 413 before the first byte of the file is parsed.
    const operations = JSON.stringify({ query: 'mutation($v: Upload!) { extendVideo(input: { video: $v, prompt: "p" }) { __typename } }', variables: { v: null } });
    const form = new FormData();
    form.set('operations', operations);
    form.set('map', JSON.stringify({ 0: ['variables.v'] }));
    form.set('0', new File([new Uint8Array(stack.config.maxUploadRequestBytes + 1)], 'huge.mp4'));
    const response = await fetch(stack.graphqlUrl, { method: 'POST', headers: { 'x-api-key': stack.key }, body: form });
    expect(response.status).toBe(413);

    // The same body of unknown length (chunked, as streaming upload clients send it) is counted as
    // it arrives and cut off at the limit.
    const encoded = new Response(form);
    const chunked = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'x-api-key': stack.key, 'content-type': encoded.headers.get('content-type')! },
      body: encoded.body,
      duplex: 'half',
    } as RequestInit).catch((error: Error) => error);
    // The server may answer before the client has sent everything, and close the connection.
    if (chunked instanceof Error) expect(chunked.message).toMatch(/fetch failed|closed|reset/i);
    else {
      const text = await chunked.text();
      // yoga's multipart parser reports a failed body stream as a bad request, with our reason.
      expect([400, 413], text).toContain(chunked.status);
      expect(text).toContain(`Request bodies are limited to ${stack.config.maxUploadRequestBytes} bytes`);
    }
    expect(submissions(stack).some((request) => JSON.stringify(request).includes('huge.mp4'))).toBe(false);
  });

  it('needs exactly one source: a video together with a videoUrl is refused', async () => {
    const operations = JSON.stringify({
      query: 'mutation($v: Upload!) { extendVideo(input: { video: $v, videoUrl: "https://example.com/a.mp4", prompt: "p" }) { __typename ... on InvalidInputError { fields { path message } } } }',
      variables: { v: null },
    });
    const form = new FormData();
    form.set('operations', operations);
    form.set('map', JSON.stringify({ 0: ['variables.v'] }));
    form.set('0', file(media['ok.mp4']!, 'ok.mp4'));
    const before = await recorded();
    const response = await fetch(stack.graphqlUrl, { method: 'POST', headers: { 'x-api-key': stack.key }, body: form });
    const body = (await response.json()) as { data: { extendVideo: { __typename: string; fields: { path: string[] }[] } } };
    expect(body.data.extendVideo.__typename).toBe('InvalidInputError');
    expect(body.data.extendVideo.fields.map((f) => f.path.join('.'))).toEqual(['input.videoUrl', 'input.sourceGenerationId', 'input.video']);
    expect(await recorded()).toEqual(before);
  });
});

describe('an uploaded source when its generation goes', () => {
  async function uploaded(prompt: string) {
    const result = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mp4']!, 'ok.mp4'), prompt });
    const answer = result.data!.extendVideo;
    if (answer.__typename !== 'ExtendVideoSuccess') throw new Error(answer.__typename);
    expect((await waitForTerminal(stack, answer.generation.id)).status).toBe('SUCCEEDED');
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id: decodeGlobalID(answer.generation.id).id }, include: { sourceUpload: true, video: true } });
    return { id: answer.generation.id, row, upload: row.sourceUpload!, uploadPath: join(stack.config.storageDir, row.sourceUpload!.storageKey), url: answer.generation.sourceVideoUrl };
  }
  const exists = (path: string) => stat(path).then(() => true, () => false);

  it('deleteGeneration removes the upload that only it used, from storage and from /videos', async () => {
    const { id, upload, uploadPath, url } = await uploaded('deleted with its upload');
    expect(await exists(uploadPath)).toBe(true);
    expect((await fetch(url)).status).toBe(200);

    expect((await stack.execute(DeleteGenerationDocument, { id })).data!.deleteGeneration.__typename).toBe('DeleteGenerationSuccess');
    expect(await stack.app.db.sourceUpload.findUnique({ where: { id: upload.id } })).toBeNull();
    expect(await exists(uploadPath)).toBe(false);
    expect((await fetch(url)).status).toBe(404);
  });

  it('the retention sweep removes an upload once every generation from it finished long enough ago, and the generation keeps its row', async () => {
    const { row, upload, uploadPath, url } = await uploaded('upload outlives nothing');
    const fourDaysAgo = new Date(Date.now() - 4 * 24 * 60 * 60_000);
    await stack.app.db.generation.update({ where: { id: row.id }, data: { completedAt: fourDaysAgo } });
    await stack.app.db.sourceUpload.update({ where: { id: upload.id }, data: { createdAt: fourDaysAgo } });

    const removed = await removeExpiredVideos({ db: stack.app.db, storage: new LocalVideoStorage(stack.config.storageDir) }, { videoDays: 3 });
    expect(removed).toBe(2);
    expect(await exists(uploadPath)).toBe(false);
    expect(await exists(join(stack.config.storageDir, row.video!.storageKey))).toBe(false);
    expect((await fetch(url)).status).toBe(404);
    const after = await stack.app.db.generation.findUniqueOrThrow({ where: { id: row.id }, include: { video: true } });
    expect(after).toMatchObject({ status: 'SUCCEEDED', sourceUploadId: null, sourceVideoUrl: url, video: null, videoExpiredAt: expect.any(Date) });
  });
});

it('the test media are what they claim: an MP4 and a QuickTime MOV', () => {
  expect(media['ok.mp4']!.subarray(4, 8).toString('latin1')).toBe('ftyp');
  expect(media['ok.mov']!.subarray(4, 12).toString('latin1')).toBe('ftypqt  ');
});
