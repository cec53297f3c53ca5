import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/auth/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import { removeExpiredVideos } from '../src/generations/cleanup.ts';
import { LocalVideoStorage } from '../src/storage/storage.ts';
import { startSimulator } from '../src/upstream/simulator/index.ts';
import { DeleteGenerationDocument, ExtendUploadedVideoDocument } from './gql/graphql.ts';
import { createFreshDatabase, killAllChildServers, startChildServer } from './helpers/child-server.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

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
    // Ended before the next test counts Segmind's submissions, so its submit is not counted there.
    expect((await waitForTerminal(stack, a.generation.id)).status).toBe('SUCCEEDED');
  });

  it('refuses videos longer than 30 s, naming the limit', async () => {
    await expectRefused(media['long.mp4']!, 'long.mp4', /^must be at most 30 seconds long \(it is 31\.\d s\)$/);
  });

  it('refuses frames wider or taller than 1920 px, naming the limit', async () => {
    await expectRefused(media['wide.mp4']!, 'wide.mp4', /^must be at most 1920 px wide \(it is 2560 px\)$/);
    await expectRefused(media['tall.mp4']!, 'tall.mp4', /^must be at most 1920 px high \(it is 1928 px\)$/);
  });

  it('refuses files that are not MP4 or MOV, and truncated ones', async () => {
    await expectRefused(Buffer.from('GIF89a not a video at all'), 'x.mp4', /^must be a readable MP4 or MOV file: not an MP4 file/);
    await expectRefused(media['ok.mp4']!.subarray(0, Math.floor(media['ok.mp4']!.length / 2)), 'half.mp4', /^must be a readable MP4 or MOV file: truncated/);
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

const BOUNDARY = 'extendql-test-boundary';
const UPLOAD_MUTATION =
  'mutation($v: Upload!) { extendVideo(input: { video: $v, prompt: "p" }) { __typename ... on ExtendVideoSuccess { generation { id } } ... on InvalidInputError { fields { path message } } } }';

/** Temporary upload files the server holds right now. */
const tempUploads = async () => (await readdir(join(stack.config.storageDir, '.tmp')).catch(() => [] as string[])).filter((name) => name.endsWith('.upload.part'));

/**
 * A multipart upload of `video` sent as a stream of unknown length: the operations, the map and
 * the first `holdAfter` bytes of the file go at once, the rest only after release().
 */
function heldUpload(key: string, video: Buffer, holdAfter: number) {
  const abort = new AbortController();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const operations = JSON.stringify({ query: UPLOAD_MUTATION, variables: { v: null } });
  const part = (headers: string, content: string) => `--${BOUNDARY}\r\n${headers}\r\n\r\n${content}\r\n`;
  const head =
    part('Content-Disposition: form-data; name="operations"', operations) +
    part('Content-Disposition: form-data; name="map"', JSON.stringify({ 0: ['variables.v'] })) +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="held.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
  let step = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (step++ === 0) return controller.enqueue(new Uint8Array(Buffer.concat([Buffer.from(head), video.subarray(0, holdAfter)])));
      await gate;
      controller.enqueue(new Uint8Array(Buffer.concat([video.subarray(holdAfter), Buffer.from(`\r\n--${BOUNDARY}--\r\n`)])));
      controller.close();
    },
  });
  const response = fetch(stack.graphqlUrl, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body,
    duplex: 'half',
    signal: abort.signal,
  } as RequestInit).catch((error: Error) => error);
  return { response, release, abort: () => abort.abort() };
}

async function typename(response: Response | Error) {
  if (response instanceof Error) throw response;
  const body = (await response.json()) as { data?: { extendVideo: { __typename: string } } };
  return body.data?.extendVideo.__typename;
}

describe('uploads go to disk as they arrive', () => {
  it('nothing of a request is left in the temporary directory once it is answered, accepted or refused', async () => {
    const accepted = await stack.execute(ExtendUploadedVideoDocument, { video: file(media['ok.mp4']!, 'ok.mp4'), prompt: 'tidy' });
    const answer = accepted.data!.extendVideo;
    if (answer.__typename !== 'ExtendVideoSuccess') throw new Error(answer.__typename);
    expect(await tempUploads()).toEqual([]);
    await waitForTerminal(stack, answer.generation.id);
    await expectRefused(media['long.mp4']!, 'long.mp4', /^must be at most 30 seconds long/);
    expect(await tempUploads()).toEqual([]);
  });

  it('keeps the multipart limits: one file, fields up to MAX_REQUEST_BYTES (400, nothing kept)', async () => {
    const before = await recorded();
    const post = async (form: FormData) => {
      const response = await fetch(stack.graphqlUrl, { method: 'POST', headers: { 'x-api-key': stack.key }, body: form });
      const body = (await response.json()) as { errors: { message: string }[] };
      return { status: response.status, message: body.errors[0]!.message };
    };
    const form = (operations: string) => {
      const f = new FormData();
      f.set('operations', operations);
      f.set('map', JSON.stringify({ 0: ['variables.v'] }));
      f.set('0', file(media['ok.mp4']!, 'a.mp4'));
      return f;
    };
    const operations = JSON.stringify({ query: UPLOAD_MUTATION, variables: { v: null } });
    const twoFiles = form(operations);
    twoFiles.set('1', file(media['ok.mp4']!, 'b.mp4'));
    const tooMany = await post(twoFiles);
    expect(tooMany).toEqual({ status: 400, message: 'POST body sent invalid multipart data: Files limit exceeded: 1' });

    const padded = JSON.stringify({ query: `${UPLOAD_MUTATION} # ${'x'.repeat(stack.config.maxRequestBytes)}`, variables: { v: null } });
    const bigField = await post(form(padded));
    expect(bigField).toEqual({ status: 400, message: `POST body sent invalid multipart data: Field value size exceeded: ${stack.config.maxRequestBytes} bytes` });

    const noOperations = new FormData();
    noOperations.set('0', file(media['ok.mp4']!, 'a.mp4'));
    expect(await post(noOperations)).toEqual({ status: 400, message: 'Missing multipart form field "operations"' });

    expect(await recorded()).toEqual(before);
    await expect.poll(tempUploads).toEqual([]);
  });

  it('a client that goes away mid-upload leaves no temporary file, and nothing is recorded', async () => {
    const before = await recorded();
    const video = media['ok.mp4']!;
    const upload = heldUpload(stack.key, video, Math.floor(video.length / 2));
    // The file is written as it arrives: its first half is on disk while the rest is awaited.
    await expect.poll(tempUploads, { timeout: 10_000 }).toHaveLength(1);
    upload.abort();
    expect(await upload.response).toBeInstanceOf(Error);
    await expect.poll(tempUploads, { timeout: 10_000 }).toEqual([]);
    expect(await recorded()).toEqual(before);
  });

  it('refuses a third upload of one key at once (429, Retry-After) before reading it; other keys and later uploads go through', async () => {
    const key = await stack.newKey('two-at-once');
    const video = media['ok.mp4']!;
    const half = Math.floor(video.length / 2);
    const first = heldUpload(key, video, half);
    const second = heldUpload(key, video, half);
    await expect.poll(tempUploads, { timeout: 10_000 }).toHaveLength(2);

    // Its body never completes: the answer comes anyway, without reading it.
    const third = heldUpload(key, video, half);
    const refused = await third.response;
    if (refused instanceof Error) throw refused;
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('5');
    const body = (await refused.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).toBe('This API key may send 2 uploads at once; retry in 5 s');
    third.abort();
    expect(await tempUploads()).toHaveLength(2);

    const otherKey = await stack.execute(ExtendUploadedVideoDocument, { video: file(video, 'other.mp4'), prompt: 'another key' }, await stack.newKey('another'));
    expect(otherKey.data!.extendVideo.__typename).toBe('ExtendVideoSuccess');

    first.release();
    second.release();
    expect([await typename(await first.response), await typename(await second.response)]).toEqual(['ExtendVideoSuccess', 'ExtendVideoSuccess']);
    await expect.poll(tempUploads, { timeout: 10_000 }).toEqual([]);
    // Both slots were given back.
    const again = await Promise.all([0, 1].map(() => stack.execute(ExtendUploadedVideoDocument, { video: file(video, 'again.mp4'), prompt: 'again' }, key)));
    expect(again.map((result) => result.data!.extendVideo.__typename)).toEqual(['ExtendVideoSuccess', 'ExtendVideoSuccess']);
  });

  it('refuses an upload without a valid key (401) before reading it: made-up keys take none of the server’s upload slots', async () => {
    const video = media['ok.mp4']!;
    const half = Math.floor(video.length / 2);
    // As many held uploads as the server takes at once, each under another made-up key.
    const presented = Array.from({ length: stack.config.uploads.maxConcurrent }, (_, n) => `xq_made-up-${n}`);
    const held = presented.map((key) => heldUpload(key, video, half));
    const answers = await Promise.all(
      held.map(async ({ response }) => {
        const answer = await Promise.race([response, new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 5_000))]);
        if (answer === 'no answer' || answer instanceof Error) return String(answer);
        const body = (await answer.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
        return `${answer.status} ${body.errors?.[0]?.extensions?.code ?? JSON.stringify(body)}`;
      }),
    );
    held.forEach((upload) => upload.abort());
    expect(answers).toEqual(presented.map(() => '401 UNAUTHENTICATED'));
    expect(await tempUploads()).toEqual([]);

    // A real key's upload is not turned away for them.
    const result = await stack.execute(ExtendUploadedVideoDocument, { video: file(video, 'real.mp4'), prompt: 'a real key' }, await stack.newKey('real'));
    expect(result.data!.extendVideo.__typename).toBe('ExtendVideoSuccess');
  });
});

describe('memory while uploads arrive', () => {
  afterAll(killAllChildServers);

  /** The resident set of a process, from /proc, in bytes. */
  const rssOf = async (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

  it('six concurrent 45 MB uploads (three keys, two each) grow the server process by far less than their sum', { timeout: 180_000 }, async () => {
    // A valid MP4 (moov first) padded to 45 MB with a trailing free box, which MP4 readers skip.
    const size = 45 * 1024 * 1024;
    const padding = Buffer.alloc(size - media['ok.mp4']!.length);
    padding.writeUInt32BE(padding.length, 0);
    padding.write('free', 4, 'latin1');
    const big = join(dir, 'padded.mp4');
    await writeFile(big, Buffer.concat([media['ok.mp4']!, padding]));
    const small = join(dir, 'small.mp4');
    await writeFile(small, media['ok.mp4']!);

    const segmindKey = `sk-memory-${randomBytes(8).toString('hex')}`;
    const segmind = await startSimulator({ apiKey: segmindKey, mediaDir: join(tmpdir(), 'extendql-test-media'), queueMs: 50, processingMs: 150 });
    const dataDir = await mkdtemp(join(tmpdir(), 'extendql-upload-memory-'));
    const databaseUrl = await createFreshDatabase();
    const db = createDb(databaseUrl, { max: 2 });
    try {
      // The default caps: 8 uploads per process, 2 per key.
      const server = await startChildServer({
        DATABASE_URL: databaseUrl,
        SEGMIND_API_KEY: segmindKey,
        SEGMIND_BASE_URL: segmind.url,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: dataDir,
        NODE_ENV: 'test',
      });
      const keys = await Promise.all([1, 2, 3].map(async (n) => (await createApiKey(db, `memory-${n}`)).key));
      const send = async (path: string, key: string) => {
        const form = new FormData();
        form.set('operations', JSON.stringify({ query: UPLOAD_MUTATION, variables: { v: null } }));
        form.set('map', JSON.stringify({ 0: ['variables.v'] }));
        form.set('0', new File([await openAsBlob(path)], 'padded.mp4', { type: 'video/mp4' }));
        return fetch(server.graphqlUrl, { method: 'POST', headers: { 'x-api-key': key }, body: form }).then(typename);
      };
      // Warmed up: the code paths of an upload are loaded before the baseline is taken.
      expect(await send(small, keys[0]!)).toBe('ExtendVideoSuccess');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const baseline = await rssOf(server.pid);

      let peak = baseline;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await rssOf(server.pid));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const answers = await Promise.all(keys.flatMap((key) => [send(big, key), send(big, key)]));
      sampling = false;
      await sampler;

      expect(answers).toEqual(new Array(6).fill('ExtendVideoSuccess'));
      const growth = peak - baseline;
      console.log(`server RSS: baseline ${(baseline / 2 ** 20).toFixed(0)} MB, peak ${(peak / 2 ** 20).toFixed(0)} MB (+${(growth / 2 ** 20).toFixed(1)} MB) for 6 × 45 MB`);
      // Held in memory, the files alone would be 270 MB (the parser that did so grew this process
      // by about 300 MB). Streamed, what remains is garbage of socket reads awaiting collection:
      // Node allocates a buffer per read and V8 collects them once some 64 MB have built up,
      // whatever the number or size of the uploads (60-90 MB measured here).
      expect(growth).toBeLessThan(120 * 1024 * 1024);
    } finally {
      await killAllChildServers();
      await db.$disconnect();
      await segmind.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
