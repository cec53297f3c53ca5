import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/auth/api-keys.js';
import { createDb, type Db } from '../src/db/client.js';
import { startSimulator, type SimulatorHandle } from '../src/upstream/simulator/index.js';
import { ExtendVideoDocument, GenerationUpdatedDocument } from './gql/graphql.js';
import { createFreshDatabase, killAllChildServers, startChildServer, type ChildServer } from './helpers/child-server.js';
import { startRedis, stopAllRedis } from './helpers/redis.js';

let fake: SimulatorHandle;
let db: Db;
let apiA: ChildServer;
let apiB: ChildServer;
let worker: ChildServer;
let key: string;
let dataDir: string;

beforeAll(async () => {
  const segmindKey = `sk-scale-${randomBytes(12).toString('hex')}`;
  fake = await startSimulator({ apiKey: segmindKey, mediaDir: join(tmpdir(), 'extendql-test-media'), queueMs: 200, processingMs: 600 });
  dataDir = await mkdtemp(join(tmpdir(), 'extendql-scale-'));
  await chmod(dataDir, 0o755);
  const redis = await startRedis();
  const env = {
    DATABASE_URL: await createFreshDatabase(),
    REDIS_URL: redis.url,
    SEGMIND_API_KEY: segmindKey,
    SEGMIND_BASE_URL: fake.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    POLL_INTERVAL_MS: '100',
    POLL_MAX_INTERVAL_MS: '300',
    LOG_LEVEL: 'info',
  };
  // Two API instances that do no background work, and one worker with no HTTP server.
  apiA = await startChildServer({ ...env, WORKER_ENABLED: 'false' });
  [apiB, worker] = await Promise.all([
    startChildServer({ ...env, WORKER_ENABLED: 'false' }),
    startChildServer(env, { entry: 'src/worker.ts' }),
  ]);
  db = createDb(env.DATABASE_URL, { max: 2 });
  key = (await createApiKey(db, 'scale')).key;
}, 120_000);

afterAll(async () => {
  await killAllChildServers();
  await stopAllRedis();
  await db?.$disconnect();
  await fake?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('several processes, one queue', () => {
  it('a generation started on A is processed by the worker, and a subscriber on B hears every change', async () => {
    const onA = buildHTTPExecutor({ endpoint: apiA.graphqlUrl, headers: { 'x-api-key': key } });
    const onB = buildHTTPExecutor({ endpoint: apiB.graphqlUrl, headers: { 'x-api-key': key } });

    // Segmind answers "still queued" until the subscriber on B has seen RUNNING, so the stream
    // cannot open after the changes it is meant to hear (each event re-reads the row, so a state
    // that passes quickly can be skipped).
    fake.faults.inject('status', { kind: 'flap' }, 100_000);
    const created = await onA({ document: ExtendVideoDocument, variables: { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'across instances' } } });
    if (Symbol.asyncIterator in created) throw new Error('expected a single result');
    const extended = created.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    const id = extended.generation.id;

    const events = await onB({ document: GenerationUpdatedDocument, variables: { id } });
    if (!(Symbol.asyncIterator in events)) throw new Error(`not a stream: ${JSON.stringify(events)}`);
    const statuses: string[] = [];
    for await (const event of events) {
      const status = event.data!.generationUpdated.status;
      statuses.push(status);
      if (status === 'RUNNING') fake.faults.clear();
    }
    // B does no work itself: every change after the first came from the worker through Redis.
    expect(statuses[0]).toMatch(/^(QUEUED|RUNNING)$/);
    expect(statuses).toContain('RUNNING');
    expect(statuses.at(-1)).toBe('SUCCEEDED');
    const order = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    expect(statuses.map((status) => order.indexOf(status))).toEqual(statuses.map((status) => order.indexOf(status)).sort());

    const rawId = decodeGlobalID(id).id;
    const workedBy = (server: ChildServer) => server.logs().some((line) => line.generationId === rawId && line.msg === 'generation succeeded');
    expect(workedBy(worker)).toBe(true);
    expect(workedBy(apiA) || workedBy(apiB)).toBe(false);
    for (const server of [apiA, apiB, worker]) expect(server.output()).not.toContain(key);
  });
});
