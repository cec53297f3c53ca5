// The simulator as Segmind: it fetches and checks video_url, makes its output from the source,
// and keeps its jobs across a restart. Real HTTP, real ffmpeg, real files.

import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIMULATED_LABEL, startSimulator, type SimulatorHandle } from '../src/upstream/simulator/index.ts';

const KEY = 'sim-sources-key-0123456789';
const authed = { 'x-api-key': KEY, 'content-type': 'application/json' };
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dir: string;
let origin: http.Server;
let base: string;
const servers: SimulatorHandle[] = [];

/** A real MP4 made with ffmpeg from a lavfi source. */
async function makeClip(name: string, source: string, seconds: number): Promise<string> {
  const file = path.join(dir, name);
  await run(ffmpegInstaller.path, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
  return file;
}

/** The average colour of a frame (the first, or the last with `last`), as [r, g, b]. */
async function averageColour(file: string, last = false): Promise<number[]> {
  const seek = last ? ['-sseof', '-0.3'] : [];
  const { stdout } = await run(ffmpegInstaller.path, [...seek, '-i', file, '-vf', 'scale=1:1:flags=area', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    encoding: 'buffer',
  });
  return [...(stdout as Buffer).subarray(-3)];
}

function parseMp4(bytes: Buffer): Movie {
  const file = createFile();
  let info: Movie | undefined;
  file.onReady = (movie) => (info = movie);
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer, 0));
  file.flush();
  if (!info) throw new Error('mp4box could not parse the file');
  return info;
}

async function simulator(options: { mediaDir?: string; queueMs?: number; processingMs?: number } = {}): Promise<SimulatorHandle> {
  const sim = await startSimulator({ apiKey: KEY, mediaDir: options.mediaDir ?? dir, queueMs: options.queueMs ?? 10, processingMs: options.processingMs ?? 100, fetchSources: true });
  servers.push(sim);
  return sim;
}

async function submit(sim: SimulatorHandle, videoUrl: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${sim.url}/v2/pixverse-5-extend`, {
    method: 'POST',
    headers: authed,
    body: JSON.stringify({ video_url: videoUrl, prompt: 'the tide comes in', duration: 5, quality: '360p', motion_mode: 'normal', ...extra }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { request_id: string; status_url: string; response_url: string };
}

/** Polls /status until COMPLETED or FAILED; returns the last answer's HTTP status and body. */
async function finish(statusUrl: string): Promise<{ http: number; body: { status: string; error?: string } }> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(statusUrl, { headers: { 'x-api-key': KEY } });
    const body = (await res.json()) as { status: string; error?: string };
    if (body.status === 'COMPLETED' || body.status === 'FAILED') return { http: res.status, body };
    await sleep(25);
  }
  throw new Error('the job did not finish');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'extendql-sim-sources-'));
  const clips: Record<string, string> = {
    '/red.mp4': await makeClip('red.mp4', 'color=c=0xD02020:s=320x240:r=8', 1),
    '/long.mp4': await makeClip('long.mp4', 'color=c=blue:s=64x36:r=1', 31),
    '/wide.mp4': await makeClip('wide.mp4', 'color=c=blue:s=2000x100:r=1', 1),
  };
  origin = http.createServer((req, res) => {
    const clip = clips[req.url ?? ''];
    if (clip) {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      createReadStream(clip).pipe(res);
    } else if (req.url === '/huge.mp4') {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(60 * 1024 * 1024) });
      res.end(); // the declared length alone is refused
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(origin.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  for (const sim of servers) await sim.close();
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('the source check', () => {
  it('fails a job whose source answers 404 with 422 and Segmind-like text on /status and on the result', async () => {
    const sim = await simulator();
    const job = await submit(sim, `${base}/missing.mp4`);
    const status = await finish(job.status_url);
    expect(status).toEqual({ http: 422, body: expect.objectContaining({ status: 'FAILED', error: 'Failed to fetch video_url: HTTP 404' }) });
    const result = await fetch(job.response_url, { headers: { 'x-api-key': KEY } });
    expect(result.status).toBe(422);
    expect(await result.json()).toMatchObject({ status: 'FAILED', error: 'Failed to fetch video_url: HTTP 404' });
    expect(sim.credits()).toBe(100); // not billed
  });

  it('refuses sources over 50 MB, 30 s or 1920 px, each with its reason', async () => {
    const sim = await simulator();
    const outcomes = await Promise.all(['/huge.mp4', '/long.mp4', '/wide.mp4'].map(async (p) => (await finish((await submit(sim, base + p)).status_url)).body.error));
    expect(outcomes).toEqual([
      'video_url is too large: 60.0 MB (at most 50 MB)',
      'video_url is too long: 31.0 s (at most 30 s)',
      'video_url is too large: 2000x100 (at most 1920 px)',
    ]);
  });
});

describe('the output', () => {
  it('continues the source: its last frame, at the source aspect ratio, for the requested duration, encoded once', async () => {
    const sim = await simulator();
    const job = await submit(sim, `${base}/red.mp4`, { prompt: 'a red wall, then the sea' });
    expect((await finish(job.status_url)).body.status).toBe('COMPLETED');
    const outputUrl = `${sim.url}/outputs/${job.request_id}.mp4`;
    const bytes = Buffer.from(await (await fetch(outputUrl)).arrayBuffer());

    const movie = parseMp4(bytes);
    expect(movie.videoTracks[0]?.video).toEqual({ width: 480, height: 360 }); // 360p at the source's 4:3
    expect(movie.duration / movie.timescale).toBeCloseTo(5, 1);
    expect(bytes.includes(Buffer.from(SIMULATED_LABEL))).toBe(true);

    // The first frame is the source's last one (caption aside): red, not the colour-bar pattern.
    const file = path.join(dir, 'red-output.mp4');
    await writeFile(file, bytes);
    const [r = 0, g = 0, b = 0] = await averageColour(file);
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(80);
    expect(b).toBeLessThan(80);

    // Asked again (and by another process on the same directory): the same file, not a new encode.
    const cached = path.join(dir, 'outputs', `${job.request_id}-v1.mp4`);
    const before = await stat(cached);
    expect(Buffer.from(await (await fetch(outputUrl)).arrayBuffer()).equals(bytes)).toBe(true);
    expect((await stat(cached)).mtimeMs).toBe(before.mtimeMs);
  });
});

describe('a restart', () => {
  it('keeps jobs: a job accepted by one process finishes in the next, from its stored timestamps', async () => {
    const mediaDir = await mkdtemp(path.join(tmpdir(), 'extendql-sim-restart-'));
    const first = await simulator({ mediaDir, queueMs: 20, processingMs: 4000 });
    const job = await submit(first, `${base}/red.mp4`);
    const jobFile = path.join(mediaDir, 'jobs', `${job.request_id}.json`);
    const readJob = async () => JSON.parse(await readFile(jobFile, 'utf8')) as Record<string, unknown>;
    for (let i = 0; i < 200 && !(await readJob()).sourceCheckedAt; i++) await sleep(20); // PROCESSING, its source checked
    await first.close();
    const stored = await readJob();
    expect(stored).toMatchObject({ requestId: job.request_id, cost: 0.375, params: { video_url: `${base}/red.mp4` } });
    expect(stored.final).toBeUndefined();
    expect(stored.sourceCheckedAt).toEqual(expect.any(Number));

    const second = await simulator({ mediaDir, queueMs: 20, processingMs: 4000 });
    const statusUrl = `${second.url}/v2/requests/${job.request_id}/status`;
    const early = (await (await fetch(statusUrl, { headers: { 'x-api-key': KEY } })).json()) as { status: string };
    expect(early.status).toBe('PROCESSING');
    expect((await finish(statusUrl)).body.status).toBe('COMPLETED');
    expect(second.fetchedSources).toEqual([]); // checked once, before the restart
    const result = (await (await fetch(`${second.url}/v2/requests/${job.request_id}`, { headers: { 'x-api-key': KEY } })).json()) as { output: string };
    expect(result.output).toBe(`${second.url}/outputs/${job.request_id}.mp4`);
    const video = await fetch(result.output);
    expect(video.status).toBe(200);
    expect(parseMp4(Buffer.from(await video.arrayBuffer())).videoTracks[0]?.video).toEqual({ width: 480, height: 360 });
    await rm(mediaDir, { recursive: true, force: true });
  });
  it('checks the source in the next process when the job was still QUEUED at the restart', async () => {
    const mediaDir = await mkdtemp(path.join(tmpdir(), 'extendql-sim-restart-'));
    const first = await simulator({ mediaDir, queueMs: 600, processingMs: 200 });
    const job = await submit(first, `${base}/missing.mp4`);
    await first.close(); // before processing starts: nothing fetched yet
    expect(first.fetchedSources).toEqual([]);

    const second = await simulator({ mediaDir, queueMs: 600, processingMs: 200 });
    const { http: status, body } = await finish(`${second.url}/v2/requests/${job.request_id}/status`);
    expect(status).toBe(422);
    expect(body).toMatchObject({ status: 'FAILED', error: 'Failed to fetch video_url: HTTP 404' });
    expect(second.fetchedSources).toEqual([`${base}/missing.mp4`]);
    await rm(mediaDir, { recursive: true, force: true });
  });
});
