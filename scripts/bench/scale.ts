/**
 * Scenarios 4 and 5 of `npm run bench`: many generations in flight at once (memory and event-loop
 * delay of the server), and copying one large MP4 output into storage (memory and time, against
 * `curl -o` of the same URL).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import type { Db } from '../../src/db/client.ts';
import type { SimulatorHandle } from '../../src/upstream/simulator/index.ts';
import { rssMb, type Child } from './lib.ts';

const EXTEND = 'mutation Extend($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id } } ... on Error { message } } }';

export interface EventLoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** Asks the server's probe (scripts/bench/probe.ts) something over IPC. */
export type Ask = <T>(server: Child, message: object) => Promise<T>;

async function extend(graphqlUrl: string, key: string, input: Record<string, unknown>): Promise<void> {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query: EXTEND, variables: { input } }),
  });
  const body = (await response.json()) as { data?: { extendVideo: { __typename: string; message?: string } } };
  if (body.data?.extendVideo.__typename !== 'ExtendVideoSuccess') throw new Error(`extendVideo was not accepted: ${JSON.stringify(body)}`);
}

/** Samples a process's RSS every `everyMs`; `stop()` answers the peak and every sample. */
function sampleRss(pid: number | undefined, everyMs: number) {
  const samples: number[] = [];
  const timer = setInterval(() => void rssMb(pid).then((mb) => samples.push(mb)), everyMs);
  return { stop: () => (clearInterval(timer), { peak: Math.max(0, ...samples), samples }) };
}

export interface InFlightResult {
  count: number;
  submitSeconds: number;
  drainSeconds: number;
  byStatus: Record<string, number>;
  peakRssMb: number;
  startRssMb: number;
  eventLoop: EventLoopDelay;
  /** Peaks of process.memoryUsage() inside the server, MB. */
  memoryPeaks: Record<string, number>;
}

/**
 * Scenario 4: accepts `count` generations (50 requests at a time, keys rotated) against a fake
 * whose jobs take `jobMs`, then waits until every one has ended. Peak RSS is sampled from /proc
 * every 100 ms; event-loop delay comes from the server's own histogram over the whole interval.
 */
export async function manyInFlight(options: {
  server: Child;
  ask: Ask;
  db: Db;
  graphqlUrl: string;
  keys: string[];
  count: number;
  timeoutMs: number;
}): Promise<InFlightResult> {
  const { server, ask, db, graphqlUrl, keys, count } = options;
  const startRssMb = await rssMb(server.process.pid);
  const rss = sampleRss(server.process.pid, 100);
  await ask(server, { eld: 'start' });
  await ask(server, { mem: 'start' });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < count) {
        const i = next++;
        await extend(graphqlUrl, keys[i % keys.length]!, { videoUrl: 'https://videos.example/bench.mp4', prompt: `in flight ${i}`, quality: 'Q360P' });
      }
    }),
  );
  const submitSeconds = (performance.now() - started) / 1000;
  const deadline = Date.now() + options.timeoutMs;
  let byStatus: Record<string, number>;
  for (;;) {
    const groups = await db.generation.groupBy({ by: ['status'], _count: { _all: true } });
    byStatus = Object.fromEntries(groups.map((g) => [g.status, g._count._all]));
    if ((byStatus.QUEUED ?? 0) + (byStatus.RUNNING ?? 0) === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const drainSeconds = (performance.now() - started) / 1000;
  const eventLoop = await ask<EventLoopDelay>(server, { eld: 'stop' });
  const { peak: memoryPeaks } = await ask<{ peak: Record<string, number> }>(server, { mem: 'stop' });
  return { count, submitSeconds, drainSeconds, byStatus, peakRssMb: rss.stop().peak, startRssMb, eventLoop, memoryPeaks };
}

/** Runs a command to completion; rejects on a non-zero exit. */
function run(command: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command.split('/').at(-1)} exited ${code}`))));
  });
}

/**
 * Writes an MP4 of about `megabytes` (1280x720, 8 s: what the fake serves for Q720P, 8 s) at
 * `file`: random noise, so the encoder cannot shrink it.
 */
export async function largeMp4(file: string, megabytes: number): Promise<number> {
  const existing = await stat(file).catch(() => null);
  if (existing && existing.size > megabytes * 0.9 * 2 ** 20) return existing.size;
  const kbits = Math.round((megabytes * 8 * 1024) / 8);
  await run(ffmpegInstaller.path, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'nullsrc=s=1280x720:r=24,geq=random(1)*255:128:128',
    '-t', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-b:v', `${kbits}k`, '-minrate', `${kbits}k`, '-maxrate', `${kbits}k`, '-bufsize', `${kbits * 2}k`,
    '-movflags', '+faststart', '-f', 'mp4', `${file}.tmp`,
  ]);
  const { rename } = await import('node:fs/promises');
  await rename(`${file}.tmp`, file);
  return (await stat(file)).size;
}

export interface CopyRun {
  /** From the server's GET of the output to SUCCEEDED (stream to disk with SHA-256, MP4 check, move into storage). */
  seconds: number;
  rssBeforeMb: number;
  rssPeakMb: number;
}

/**
 * Scenario 5, one run: a Q720P 8 s generation whose output is the large file; the copy time is
 * measured from the moment the fake received the server's output request to the row's completedAt.
 */
export async function copyLargeOutput(options: { server: Child; db: Db; graphqlUrl: string; key: string; fake: SimulatorHandle; label: string }): Promise<CopyRun> {
  const { server, db, graphqlUrl, key, fake, label } = options;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rssBeforeMb = await rssMb(server.process.pid);
  const rss = sampleRss(server.process.pid, 25);
  const requestsBefore = fake.requests.length;
  await extend(graphqlUrl, key, { videoUrl: 'https://videos.example/bench.mp4', prompt: label, quality: 'Q720P', duration: 8 });
  for (;;) {
    const row = await db.generation.findFirst({ where: { prompt: label }, select: { status: true, completedAt: true } });
    if (row && row.status !== 'QUEUED' && row.status !== 'RUNNING') {
      const { peak } = rss.stop();
      if (row.status !== 'SUCCEEDED') throw new Error(`scenario 5 generation ended ${row.status}`);
      const output = fake.requests.slice(requestsBefore).find((r) => r.method === 'GET' && /\.mp4(\?|$)/.test(r.path));
      if (!output) throw new Error('scenario 5: the fake saw no output request');
      return { seconds: (row.completedAt!.getTime() - output.at) / 1000, rssBeforeMb, rssPeakMb: peak };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The baseline of scenario 5. Seconds for `curl -o` of url into dir; with `durable`, also what extendql does beyond the
 * transfer, with standard tools one after the other: `sha256sum` of the file and `sync` of it to disk.
 */
export async function curlCopy(url: string, dir: string, options: { durable?: boolean } = {}): Promise<number> {
  await mkdir(dir, { recursive: true });
  const out = join(dir, 'curl-copy.mp4');
  const started = performance.now();
  await run('curl', ['-sS', '--fail', '-o', out, url]);
  if (options.durable) {
    await run('sha256sum', [out]);
    await run('sync', [out]);
  }
  const seconds = (performance.now() - started) / 1000;
  await rm(out, { force: true });
  return seconds;
}
