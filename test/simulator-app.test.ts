// `npm start` without SEGMIND_API_KEY, as a newcomer runs it: the real server as a child process,
// with its built-in simulator. It serves a sample clip, extends it (the output starts from the
// clip's last frame), fails a generation whose source cannot be fetched, and finishes a
// generation that was in flight when the server was stopped with Ctrl-C.

import { isTerminal } from '../src/generations/lifecycle.ts';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/auth/api-keys.ts';
import { createDb, type Db } from '../src/db/client.ts';
import { ExtendVideoDocument, GenerationDocument, type GenerationQuery } from './gql/graphql.ts';
import { createFreshDatabase, executorFor, killAllChildServers, startChildServer, type ChildServer, type Execute } from './helpers/child-server.ts';

type Generation = NonNullable<GenerationQuery['generation']>;
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const dirs: string[] = [];
let db: Db | undefined;

afterEach(async () => {
  await killAllChildServers();
});
afterAll(async () => {
  await db?.$disconnect();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, attempts = 300, intervalMs = 200): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const value = await check();
    if (value) return value;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function extend(execute: Execute, videoUrl: string): Promise<string> {
  const result = await execute(ExtendVideoDocument, { input: { videoUrl, prompt: 'The tide rolls in at sunset', quality: 'Q540P', duration: 5 } });
  const extended = result.data?.extendVideo;
  if (extended?.__typename !== 'ExtendVideoSuccess') throw new Error(`extendVideo answered ${JSON.stringify(result)}`);
  return extended.generation.id;
}

const generation = async (execute: Execute, id: string): Promise<Generation> => (await execute(GenerationDocument, { id })).data!.generation!;
const ended = (execute: Execute, id: string) =>
  waitFor(`generation ${id} to end`, async () => {
    const g = await generation(execute, id);
    return isTerminal(g.status) ? g : undefined;
  });

/** The average colour of a frame of an MP4 (the first, or the last), as [r, g, b]. */
async function averageColour(bytes: Buffer, which: 'first' | 'last'): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'extendql-frame-'));
  dirs.push(dir);
  await writeFile(join(dir, 'clip.mp4'), bytes);
  const seek = which === 'last' ? ['-sseof', '-0.3'] : [];
  const args = [...seek, '-i', join(dir, 'clip.mp4'), '-vf', 'scale=1:1:flags=area', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'];
  const { stdout } = await run(ffmpegInstaller.path, args, { encoding: 'buffer' });
  return [...(stdout as Buffer).subarray(-3)];
}

/** The simulator's stored job for this source URL, once its source check is recorded. */
async function checkedJob(dataDir: string, videoUrl: string): Promise<Record<string, unknown> | undefined> {
  const jobsDir = join(dataDir, 'simulator', 'jobs');
  for (const name of await readdir(jobsDir).catch(() => [])) {
    if (!name.endsWith('.json')) continue;
    const job = JSON.parse(await readFile(join(jobsDir, name), 'utf8')) as { params: { video_url: string }; sourceCheckedAt?: number };
    if (job.params.video_url === videoUrl && job.sourceCheckedAt) return job;
  }
  return undefined;
}

describe('npm start without SEGMIND_API_KEY', () => {
  it('serves a sample clip; across a Ctrl-C restart, fails a source that answered 404 and finishes an extension of the sample', async () => {
    const databaseUrl = await createFreshDatabase();
    const dataDir = await mkdtemp(join(tmpdir(), 'extendql-newcomer-'));
    dirs.push(dataDir);
    const env = {
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      POLL_INTERVAL_MS: '200',
      POLL_MAX_INTERVAL_MS: '500',
      SIMULATOR_QUEUE_MS: '200',
      SIMULATOR_PROCESSING_MS: '10000',
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
    };
    const first: ChildServer = await startChildServer(env);
    db = createDb(databaseUrl, { max: 2 });
    const key = (await createApiKey(db, 'newcomer')).key;
    const execute = executorFor(first.graphqlUrl, key);

    // The sample clip: an MP4 with byte ranges.
    const sample = await fetch(`${first.url}/samples/beach.mp4`);
    expect(sample.status).toBe(200);
    expect(sample.headers.get('content-type')).toBe('video/mp4');
    const sampleBytes = Buffer.from(await sample.arrayBuffer());
    expect(sampleBytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
    const part = await fetch(`${first.url}/samples/beach.mp4`, { headers: { range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 0-99/${sampleBytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(sampleBytes.subarray(0, 100))).toBe(true);

    const sampleUrl = `${first.url}/samples/beach.mp4`;
    const missingUrl = `${first.url}/samples/missing.mp4`;
    const missing = await extend(execute, missingUrl);
    const id = await extend(execute, sampleUrl);

    // Stop the server with Ctrl-C while Segmind (simulated) is PROCESSING both, their sources checked.
    await waitFor('the source checks', async () => (await checkedJob(dataDir, sampleUrl)) && checkedJob(dataDir, missingUrl));
    expect((await generation(execute, id)).status).toBe('RUNNING');
    expect((await generation(execute, missing)).status).toBe('RUNNING');
    expect(await first.kill('SIGINT')).toEqual({ code: 0, signal: null });

    const second = await startChildServer(env);
    const again = executorFor(second.graphqlUrl, key);
    const failed = await ended(again, missing);
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.message).toContain('Failed to fetch video_url: HTTP 404');
    const done = await ended(again, id);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.video).toMatchObject({ width: 960, height: 540, durationSeconds: 5 });

    // The result starts where the sample ends.
    const video = Buffer.from(await (await fetch(`${second.url}${new URL(done.video!.url).pathname}`)).arrayBuffer());
    const [from, to] = [await averageColour(sampleBytes, 'last'), await averageColour(video, 'first')];
    for (const channel of [0, 1, 2]) expect(Math.abs(from[channel]! - to[channel]!)).toBeLessThan(30);
  }, 180_000);
});
