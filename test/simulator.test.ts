// Tests of the Segmind simulator itself, over real HTTP (global fetch).

import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SIMULATED_LABEL, startSimulator, type SimulatorHandle } from '../src/upstream/simulator/index.ts';
import { createMp4Cache } from '../src/upstream/simulator/mp4.ts';

const KEY = 'sim-test-key-0123456789';
const QUEUE_MS = 50;
const PROCESSING_MS = 150;

let mediaDir: string;
let sim: SimulatorHandle;

const valid = () => ({
  video_url: 'https://example.com/source.mp4',
  prompt: 'the camera keeps panning over the sea',
  duration: 5,
  quality: '360p',
  motion_mode: 'normal',
});

const authed = { 'x-api-key': KEY, 'content-type': 'application/json' };

function post(route: 'v1' | 'v2', body: unknown, headers: Record<string, string> = authed) {
  return fetch(`${sim.url}/${route}/pixverse-5-extend`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const get = (url: string, headers: Record<string, string> = { 'x-api-key': KEY }) =>
  fetch(url.startsWith('http') ? url : `${sim.url}${url}`, { headers });

interface Submitted {
  request_id: string;
  status: string;
  poll_url: string;
  status_url: string;
  response_url: string;
}

async function submitV2(body: unknown = valid()): Promise<Submitted> {
  const res = await post('v2', body);
  expect(res.status).toBe(200);
  return (await res.json()) as Submitted;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls the status URL until the job is COMPLETED or FAILED; returns the distinct statuses seen. */
async function pollUntilDone(statusUrl: string, simulator = sim): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 200; i++) {
    const res = await fetch(statusUrl, { headers: { 'x-api-key': KEY } });
    const { status } = (await res.json()) as { status: string };
    // Like Segmind, a failed job answers 422 on /status; everything else 200.
    expect(res.status).toBe(status === 'FAILED' ? 422 : 200);
    if (seen.at(-1) !== status) seen.push(status);
    if (status === 'COMPLETED' || status === 'FAILED') return seen;
    await sleep(15);
  }
  throw new Error(`job did not finish: ${JSON.stringify(seen)} ${simulator.url}`);
}

function parseMp4(bytes: Uint8Array): Movie {
  const file = createFile();
  let info: Movie | undefined;
  let failure: string | undefined;
  file.onReady = (movie) => {
    info = movie;
  };
  file.onError = (module, message) => {
    failure = `${module}: ${message}`;
  };
  const copy = bytes.slice().buffer; // a standalone ArrayBuffer of exactly these bytes
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(copy, 0));
  file.flush();
  if (!info) throw new Error(`mp4box could not parse the file ${failure ?? ''}`);
  return info;
}

function expectVideo(bytes: Buffer, width: number, height: number, seconds: number): void {
  expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
  const info = parseMp4(bytes);
  const track = info.videoTracks[0];
  expect(track?.video).toEqual({ width, height });
  expect(track?.codec).toMatch(/^avc1/);
  expect(info.duration / info.timescale).toBeCloseTo(seconds, 1);
  expect(bytes.includes(Buffer.from(SIMULATED_LABEL))).toBe(true); // the metadata label
}

beforeAll(async () => {
  mediaDir = await mkdtemp(path.join(tmpdir(), 'extendql-sim-'));
  sim = await startSimulator({ apiKey: KEY, mediaDir, queueMs: QUEUE_MS, processingMs: PROCESSING_MS });
});

afterAll(async () => {
  await sim?.close();
  await rm(mediaDir, { recursive: true, force: true });
});

beforeEach(() => {
  sim.faults.clear();
  sim.clearRequests();
  sim.setCredits(100);
});

describe('auth, content type, JSON and methods', () => {
  it('answers 401 without a key and with a wrong key', async () => {
    const missing = await post('v2', valid(), { 'content-type': 'application/json' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: 'Missing Authorization or x-api-key in header' });

    const wrong = await get('/v1/get-user-credits', { 'x-api-key': 'not-the-key' });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toMatch(/^Unauthorized\. API key is invalid/);
    expect(sim.jobs()).toHaveLength(0);
  });

  it('answers 406 to a wrong content type, 400 to broken JSON, and bills neither', async () => {
    const before = sim.jobs().length;
    const wrongType = await post('v2', JSON.stringify(valid()), { 'x-api-key': KEY, 'content-type': 'text/plain' });
    expect(wrongType.status).toBe(406);
    expect(await wrongType.json()).toHaveProperty('error');

    const broken = await post('v2', '{"video_url": ');
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: string }).error).toMatch(/JSON/);

    expect(sim.jobs()).toHaveLength(before);
    expect(sim.credits()).toBe(100);
  });

  it('answers 405 with HTML to other methods on the model route', async () => {
    const res = await get('/v2/pixverse-5-extend');
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/<html/i);
  });

  it('puts rate-limit headers on API responses', async () => {
    const res = await get('/v1/get-user-credits');
    expect(Number(res.headers.get('x-rate-limit-remaining'))).toBeGreaterThan(0);
    expect(Date.parse(res.headers.get('x-rate-limit-reset-at-utc') ?? '')).toBeGreaterThan(Date.now() - 1000);
  });
});

describe('request rules', () => {
  // With a zero balance, a request that passes every rule gets 406 (insufficient credits) and one
  // that breaks a rule gets 422, so no jobs (and no MP4s) are made here.
  const long = (n: number) => 'a'.repeat(n);
  const urlOfLength = (n: number) => {
    const base = 'https://example.com/';
    return base + 'v'.repeat(n - base.length);
  };
  const cases: [string, Record<string, unknown>, 'ok' | string][] = [
    ['prompt of 2048 characters', { prompt: long(2048) }, 'ok'],
    ['prompt of 2049 characters', { prompt: long(2049) }, 'prompt'],
    ['blank prompt', { prompt: '   ' }, 'prompt'],
    ['missing prompt', { prompt: undefined }, 'prompt'],
    ['prompt of the wrong type', { prompt: 42 }, 'prompt'],
    ['negative_prompt of 2048 characters', { negative_prompt: long(2048) }, 'ok'],
    ['negative_prompt of 2049 characters', { negative_prompt: long(2049) }, 'negative_prompt'],
    ['video_url of 2048 characters', { video_url: urlOfLength(2048) }, 'ok'],
    ['video_url of 2049 characters', { video_url: urlOfLength(2049) }, 'video_url'],
    ['relative video_url', { video_url: '/videos/a.mp4' }, 'video_url'],
    ['ftp video_url', { video_url: 'ftp://example.com/a.mp4' }, 'video_url'],
    ['missing video_url', { video_url: undefined }, 'video_url'],
    ['seed 1', { seed: 1 }, 'ok'],
    ['seed 999999', { seed: 999_999 }, 'ok'],
    ['seed 0', { seed: 0 }, 'seed'],
    ['seed 1000000', { seed: 1_000_000 }, 'seed'],
    ['fractional seed', { seed: 1.5 }, 'seed'],
    ['seed as a string', { seed: '7' }, 'seed'],
    ['duration 8', { duration: 8 }, 'ok'],
    ['duration 6', { duration: 6 }, 'duration'],
    ['duration as a string', { duration: '5' }, 'duration'],
    ['missing duration', { duration: undefined }, 'duration'],
    ['unknown quality', { quality: '480p' }, 'quality'],
    ['missing quality', { quality: undefined }, 'quality'],
    ['unknown motion_mode', { motion_mode: 'slow' }, 'motion_mode'],
    ['missing motion_mode', { motion_mode: undefined }, 'motion_mode'],
    ['known style', { style: 'clay' }, 'ok'],
    ['unknown style', { style: 'noir' }, 'style'],
    ['unknown extra field', { color: 'blue' }, 'ok'],
    ['fast with duration 5', { motion_mode: 'fast', duration: 5 }, 'ok'],
    ['fast with duration 8', { motion_mode: 'fast', duration: 8 }, 'motion_mode'],
    ['1080p with 5 s normal', { quality: '1080p', duration: 5 }, 'ok'],
    ['1080p with duration 8', { quality: '1080p', duration: 8 }, 'quality'],
    ['1080p with fast', { quality: '1080p', motion_mode: 'fast' }, 'quality'],
    ['720p with duration 8', { quality: '720p', duration: 8 }, 'ok'],
  ];

  it.each(cases)('%s', async (_name, patch, expected) => {
    sim.setCredits(0);
    const res = await post('v2', { ...valid(), ...patch });
    const { error } = (await res.json()) as { error: string };
    if (expected === 'ok') {
      expect(res.status, error).toBe(406);
      expect(error).toMatch(/^Insufficient credits/);
    } else {
      expect(res.status).toBe(422);
      expect(error.startsWith(`${expected}: `), error).toBe(true);
    }
    expect(sim.jobs()).toHaveLength(0);
  });

  it('answers 400 to a JSON body that is not an object', async () => {
    expect((await post('v2', [valid()])).status).toBe(400);
  });
});

describe('v2 jobs', () => {
  it('goes QUEUED → PROCESSING → COMPLETED and serves a real MP4 of the right size and length', async () => {
    const job = await submitV2();
    expect(job.status).toBe('QUEUED');
    expect(job.status_url).toBe(`${sim.url}/v2/requests/${job.request_id}/status`);
    expect(job.response_url).toBe(`${sim.url}/v2/requests/${job.request_id}`);
    expect(job.poll_url).toBe(`${sim.url}/v1/requests/${job.request_id}`);
    expect(sim.credits()).toBe(99.625);

    const early = (await (await get(job.response_url)).json()) as Record<string, unknown>;
    expect(['QUEUED', 'PROCESSING']).toContain(early.status);
    expect(early).not.toHaveProperty('output');

    expect(await pollUntilDone(job.status_url)).toEqual(['QUEUED', 'PROCESSING', 'COMPLETED']);

    const resultRes = await get(job.response_url);
    expect(resultRes.status).toBe(200);
    const result = (await resultRes.json()) as {
      status: string;
      output: string;
      metrics: Record<string, number>;
    };
    expect(result.status).toBe('COMPLETED');
    expect(result.metrics).toMatchObject({ cost: 0.375, remaining_credits: 99.625 });
    for (const key of ['inference_time', 'queue_time', 'total_time']) expect(typeof result.metrics[key]).toBe('number');
    expect((await get(job.poll_url)).status).toBe(200);

    const video = await fetch(result.output); // no key needed for output files
    expect(video.status).toBe(200);
    expect(video.headers.get('content-type')).toBe('video/mp4');
    const bytes = Buffer.from(await video.arrayBuffer());
    expect(Number(video.headers.get('content-length'))).toBe(bytes.length);
    expectVideo(bytes, 640, 360, 5);

    expect(sim.jobs().find((j) => j.requestId === job.request_id)).toMatchObject({
      status: 'COMPLETED',
      cost: 0.375,
      outputUrl: result.output,
      params: valid(),
    });
  });

  it('fails the next job on request, answers 422 on its result, and refunds it', async () => {
    sim.failNextJob('PixVerse could not extend this video');
    const job = await submitV2();
    expect(sim.credits()).toBe(99.625);
    expect((await pollUntilDone(job.status_url)).at(-1)).toBe('FAILED');
    const res = await get(job.response_url);
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ status: 'FAILED', error: 'PixVerse could not extend this video' });
    expect(sim.credits()).toBe(100);
    // /status answers 422 too, with the same failure and its metrics (Segmind's SDK reads it so).
    const status = await get(job.status_url);
    expect(status.status).toBe(422);
    const body = (await status.json()) as { status: string; error: string; metrics: Record<string, number> };
    expect(body).toMatchObject({ status: 'FAILED', request_id: job.request_id, error: 'PixVerse could not extend this video' });
    expect(typeof body.metrics.total_time).toBe('number');
    expect((await fetch(`${sim.url}/outputs/${job.request_id}.mp4`)).status).toBe(404);
    // Only the next job fails.
    expect((await pollUntilDone((await submitV2()).status_url)).at(-1)).toBe('COMPLETED');
  });

  it('answers 404 for unknown and expired requests', async () => {
    expect((await get('/v2/requests/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await get('/v2/requests/nope/status')).status).toBe(404);

    const job = await submitV2();
    await pollUntilDone(job.status_url);
    sim.expire(job.request_id);
    const res = await get(job.response_url);
    expect(res.status).toBe(404);
    expect(await res.json()).toHaveProperty('error');
    expect((await get(job.status_url)).status).toBe(404);
    // Output files outlive the results.
    expect((await fetch(`${sim.url}/outputs/${job.request_id}.mp4`)).status).toBe(200);
  });

  it('expires results after resultTtlMs', async () => {
    const short = await startSimulator({ apiKey: KEY, mediaDir, queueMs: 0, processingMs: 10, resultTtlMs: 100 });
    try {
      const res = await fetch(`${short.url}/v2/pixverse-5-extend`, { method: 'POST', headers: authed, body: JSON.stringify(valid()) });
      const { response_url } = (await res.json()) as Submitted;
      await sleep(30);
      expect((await get(response_url)).status).toBe(200);
      await sleep(100);
      expect((await get(response_url)).status).toBe(404);
    } finally {
      await short.close();
    }
  });
});

describe('credits', () => {
  it('reports the balance, deducts the cost at submission and answers 406 when it runs out', async () => {
    sim.setCredits(0.5);
    expect(await (await get('/v1/get-user-credits')).json()).toEqual({ credits: 0.5, 'free-credits': 0 });
    await submitV2();
    expect(sim.credits()).toBe(0.125);
    const jobsBefore = sim.jobs().length;
    const res = await post('v2', valid());
    expect(res.status).toBe(406);
    expect(((await res.json()) as { error: string }).error).toMatch(/^Insufficient credits/);
    expect(sim.jobs()).toHaveLength(jobsBefore);
    expect(await (await get('/v1/get-user-credits')).json()).toEqual({ credits: 0.125, 'free-credits': 0 });
  });
});

describe('v1 sync', () => {
  it('answers with the MP4 bytes and the credit headers', async () => {
    const started = Date.now();
    const res = await post('v1', { ...valid(), quality: '540p', duration: 8, seed: 4242 });
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(QUEUE_MS + PROCESSING_MS - 5);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('x-cost')).toBe('0.75');
    expect(res.headers.get('x-remaining-credits')).toBe('99.25');
    expect(res.headers.get('x-seed-value')).toBe('4242');
    expect(Number(res.headers.get('x-generation-time'))).toBeGreaterThan(0);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expectVideo(Buffer.from(await res.arrayBuffer()), 960, 540, 8);
  });

  it('answers 422 when the job fails', async () => {
    sim.failNextJob('upstream generation failed');
    const res = await post('v1', valid());
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({ error: 'upstream generation failed' });
    expect(sim.credits()).toBe(100);
  });
});

describe('faults', () => {
  it('http: 429 with a reset header, without making a job; then back to normal', async () => {
    sim.faults.inject('submit', { kind: 'http', status: 429 });
    const jobsBefore = sim.jobs().length;
    const limited = await post('v2', valid());
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBeNull();
    expect(Date.parse(limited.headers.get('x-rate-limit-reset-at-utc') ?? '')).toBeGreaterThan(Date.now() - 1000);
    expect(await limited.json()).toHaveProperty('error');
    expect(sim.jobs()).toHaveLength(jobsBefore);
    expect((await post('v2', valid())).status).toBe(200);
  });

  it('http: applies to the next `times` requests in order, with custom bodies and headers', async () => {
    sim.faults.inject('credits', { kind: 'http', status: 500 }, 2);
    sim.faults.inject('credits', { kind: 'http', status: 502, body: '<html>bad gateway</html>', headers: { 'x-test': '1' } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get('/v1/get-user-credits')).status);
    expect(statuses).toEqual([500, 500, 502, 200]);
    sim.faults.inject('credits', { kind: 'http', status: 504, body: 'upstream timed out', headers: { 'x-test': 'yes' } });
    const res = await get('/v1/get-user-credits');
    expect([res.status, res.headers.get('x-test'), await res.text()]).toEqual([504, 'yes', 'upstream timed out']);
  });

  it('delay: answers normally after the delay', async () => {
    sim.faults.inject('credits', { kind: 'delay', ms: 300 });
    const started = Date.now();
    const res = await get('/v1/get-user-credits');
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('drop: destroys the connection; with after: true the job still exists', async () => {
    sim.faults.inject('credits', { kind: 'drop' });
    await expect(get('/v1/get-user-credits')).rejects.toThrow();
    expect((await get('/v1/get-user-credits')).status).toBe(200);

    const jobsBefore = sim.jobs().length;
    sim.faults.inject('submit', { kind: 'drop', after: true });
    await expect(post('v2', valid())).rejects.toThrow();
    expect(sim.jobs()).toHaveLength(jobsBefore + 1);
    expect(sim.credits()).toBe(99.625);
  });

  it('truncate and notMp4 on the output route', async () => {
    const job = await submitV2();
    await pollUntilDone(job.status_url);
    const outputUrl = `${sim.url}/outputs/${job.request_id}.mp4`;

    sim.faults.inject('output', { kind: 'truncate' });
    const truncated = await fetch(outputUrl);
    expect(truncated.status).toBe(200);
    expect(Number(truncated.headers.get('content-length'))).toBeGreaterThan(1000);
    await expect(truncated.arrayBuffer()).rejects.toThrow();

    sim.faults.inject('output', { kind: 'notMp4' });
    const html = await fetch(outputUrl);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(Buffer.from(await html.arrayBuffer()).subarray(4, 8).toString('latin1')).not.toBe('ftyp');

    const good = await fetch(outputUrl);
    expectVideo(Buffer.from(await good.arrayBuffer()), 640, 360, 5);
  });

  it('serves byte ranges of outputs, so a cut-short download can resume', async () => {
    const job = await submitV2();
    await pollUntilDone(job.status_url);
    const outputUrl = `${sim.url}/outputs/${job.request_id}.mp4`;
    const whole = Buffer.from(await (await fetch(outputUrl)).arrayBuffer());

    const rest = await fetch(outputUrl, { headers: { range: 'bytes=1000-' } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes 1000-${whole.length - 1}/${whole.length}`);
    expect(Buffer.from(await rest.arrayBuffer()).equals(whole.subarray(1000))).toBe(true);

    const middle = await fetch(outputUrl, { headers: { range: 'bytes=10-19' } });
    expect(middle.status).toBe(206);
    expect(Buffer.from(await middle.arrayBuffer()).equals(whole.subarray(10, 20))).toBe(true);

    const beyond = await fetch(outputUrl, { headers: { range: `bytes=${whole.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${whole.length}`);
  });

  it('flap: reports an earlier status once', async () => {
    const job = await submitV2();
    await pollUntilDone(job.status_url);
    sim.faults.inject('status', { kind: 'flap' });
    const flapped = (await (await get(job.status_url)).json()) as { status: string };
    expect(flapped.status).toBe('PROCESSING');
    const real = (await (await get(job.status_url)).json()) as { status: string };
    expect(real.status).toBe('COMPLETED');
  });
});

describe('recording', () => {
  it('records every request in order, with headers and parsed bodies', async () => {
    await post('v2', valid());
    await post('v2', 'not json at all');
    await get('/v1/get-user-credits');
    expect(sim.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v2/pixverse-5-extend',
      'POST /v2/pixverse-5-extend',
      'GET /v1/get-user-credits',
    ]);
    const [first, second, third] = sim.requests;
    expect(first?.body).toEqual(valid());
    expect(first?.headers['x-api-key']).toBe(KEY);
    expect(second?.body).toBe('not json at all');
    expect(third?.body).toBeUndefined();
    expect(typeof first?.at).toBe('number');
    sim.clearRequests();
    expect(sim.requests).toHaveLength(0);
  });
});

describe('fetchSources', () => {
  it('fetches the source when processing starts and fails the job unless it is an MP4', async () => {
    // A tiny origin: one real MP4 (from the cache), one HTML page, one 404.
    const mp4 = await createMp4Cache(mediaDir).get(640, 360, 5);
    const origin = http.createServer((req, res) => {
      if (req.url === '/video.mp4') {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        createReadStream(mp4).pipe(res);
      } else if (req.url === '/page.html') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const { port } = origin.address() as { port: number };
    const checking = await startSimulator({ apiKey: KEY, mediaDir, queueMs: 10, processingMs: 50, fetchSources: true });
    try {
      const run = async (videoUrl: string) => {
        const res = await fetch(`${checking.url}/v2/pixverse-5-extend`, {
          method: 'POST',
          headers: authed,
          body: JSON.stringify({ ...valid(), video_url: videoUrl }),
        });
        const { status_url, response_url } = (await res.json()) as Submitted;
        await pollUntilDone(status_url, checking);
        return (await (await get(response_url)).json()) as { status: string; error?: string };
      };
      const base = `http://127.0.0.1:${port}`;
      expect((await run(`${base}/video.mp4`)).status).toBe('COMPLETED');
      expect(await run(`${base}/page.html`)).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/MP4/) });
      expect(await run(`${base}/missing.mp4`)).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/404/) });
      expect(checking.fetchedSources).toEqual([`${base}/video.mp4`, `${base}/page.html`, `${base}/missing.mp4`]);
      expect(checking.credits()).toBe(99.625); // the two failed jobs were refunded
    } finally {
      await checking.close();
      origin.closeAllConnections();
      await new Promise((resolve) => origin.close(resolve));
    }
  });
});

describe('MP4 cache', () => {
  it('generates each size once, even under concurrent requests, and leaves no temp files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'extendql-sim-cache-'));
    try {
      const cache = createMp4Cache(dir);
      const paths = await Promise.all([cache.get(64, 36, 1), cache.get(64, 36, 1), cache.get(64, 36, 1)]);
      expect(new Set(paths).size).toBe(1);
      expect(await readdir(dir)).toEqual([path.basename(paths[0] ?? '')]);
      // A fresh cache on the same directory reuses the file.
      expect(await createMp4Cache(dir).get(64, 36, 1)).toBe(paths[0]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
