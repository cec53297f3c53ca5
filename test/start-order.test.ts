import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/app.ts';
import { createApiKey } from '../src/auth/api-keys.ts';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/client.ts';
import { JobQueue } from '../src/jobs/queue.ts';
import { Lifecycle } from '../src/lifecycle.ts';
import { startSimulator } from '../src/upstream/simulator/index.ts';
import { createTestDatabase } from './helpers/stack.ts';

// What a start waits for and what it does not: the HTTP server listens once the database is
// migrated, while the job engine (pg-boss) may still be starting; /ready says so until it has.
// Real PostgreSQL, real HTTP, a fake Segmind on 127.0.0.1.

const quiet = pino({ level: 'silent' });
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Holds pg-boss's version table in an open transaction: a pg-boss start reads it, so every start
 * waits until `release()`.
 */
async function blockJobEngineStart(databaseUrl: string): Promise<{ release(): Promise<void> }> {
  const installed = JobQueue.start(databaseUrl, quiet);
  await installed.started;
  await installed.stop();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE pgboss.version IN ACCESS EXCLUSIVE MODE');
  return {
    async release() {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

const get = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
};

/** An API key made in the database directly (the app is not up yet). */
async function keyOn(databaseUrl: string): Promise<string> {
  const db = createDb(databaseUrl, { max: 1 });
  const { key } = await createApiKey(db, 'start order');
  await db.$disconnect();
  return key;
}

/** extendVideo over HTTP; its payload's type. */
async function extendVideo(origin: string, key: string): Promise<string> {
  const response = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({
      query: 'mutation Extend($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename } }',
      variables: { input: { videoUrl: 'https://videos.example/start-order.mp4', prompt: 'the tide comes in', quality: 'Q360P' } },
    }),
  });
  const body = (await response.json()) as { data?: { extendVideo: { __typename: string } }; errors?: unknown };
  return body.data?.extendVideo.__typename ?? JSON.stringify(body.errors);
}

describe('the start', () => {
  it('listens while the job engine is still starting; /ready answers 503 with the queue "starting" until it has, and an enqueue waits for it', async () => {
    const databaseUrl = await createTestDatabase();
    const dataDir = await mkdtemp(join(tmpdir(), 'extendql-start-order-'));
    dirs.push(dataDir);
    const segmindKey = `sk-test-${randomBytes(8).toString('hex')}`;
    const segmind = await startSimulator({ apiKey: segmindKey, mediaDir: join(dataDir, 'media'), queueMs: 50, processingMs: 50 });
    const port = await freePort();
    const config = loadConfig({ DATABASE_URL: databaseUrl, SEGMIND_API_KEY: segmindKey, SEGMIND_BASE_URL: segmind.url, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, NODE_ENV: 'test' });
    const blocked = await blockJobEngineStart(databaseUrl);
    let started = false;
    const starting = startApp(config, { logger: quiet }).then((app) => ((started = true), app));
    const origin = `http://127.0.0.1:${port}`;
    let accepted: Promise<string> | undefined;
    try {
      await expect.poll(async () => (await get(`${origin}/health`).catch(() => ({ status: 0 }))).status, { timeout: 30_000 }).toBe(200);
      const ready = await get(`${origin}/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ database: 'ok', queue: 'starting' });
      // A generation asked for now is enqueued once the engine is up, not refused.
      accepted = extendVideo(origin, await keyOn(databaseUrl));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(started).toBe(false);
    } finally {
      await blocked.release();
    }
    const app = await starting;
    expect(app.queue.isStarted).toBe(true);
    expect(await accepted).toBe('ExtendVideoSuccess');
    const ready = await get(`http://127.0.0.1:${port}/ready`);
    expect({ status: ready.status, body: JSON.parse(ready.body) as unknown }).toEqual({ status: 200, body: { database: 'ok', queue: 'ok', upstream: 'closed' } });
    await app.close();
    await segmind.close();
  }, 60_000);

  it('stops a job engine that is still starting; a worker asked for meanwhile is never started', async () => {
    const databaseUrl = await createTestDatabase();
    const blocked = await blockJobEngineStart(databaseUrl);
    const queue = JobQueue.start(databaseUrl, quiet);
    expect(queue.isStarted).toBe(false);
    const steps: string[] = [];
    const working = queue.work(1, async (job) => (steps.push(job.generationId), { next: 'done' }));
    const stopping = queue.stop({ graceful: false });
    await blocked.release();
    await stopping;
    await working;
    // A job for it: nobody in this process takes it (pg-boss polls every 0.5 s).
    const other = JobQueue.start(databaseUrl, quiet);
    await other.enqueue('0197a3c0-0000-7000-8000-000000000001');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(steps).toEqual([]);
    await other.stop({ graceful: false });
  }, 60_000);
});

describe('Lifecycle.whenStarted', () => {
  it('stops parts that started side by side in reverse order of registration, whichever started first, and skips a part whose start failed', async () => {
    const lifecycle = new Lifecycle(quiet);
    const stopped: string[] = [];
    const later = (ms: number, value: string) => new Promise<string>((resolve) => setTimeout(() => resolve(value), ms));
    const slow = lifecycle.whenStarted('slow', later(40, 'slow'), async (name) => void stopped.push(name));
    const failing = lifecycle.whenStarted('failing', Promise.reject(new Error('could not start')), async () => void stopped.push('failing'));
    const fast = lifecycle.whenStarted('fast', later(5, 'fast'), async (name) => void stopped.push(name));
    await expect(failing).rejects.toThrow('could not start');
    expect(await fast).toBe('fast');
    // Closing before the slow one has started waits for it, then stops it last.
    await lifecycle.close();
    expect(await slow).toBe('slow');
    expect(stopped).toEqual(['fast', 'slow']);
  });
});
