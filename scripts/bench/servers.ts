/**
 * The processes `npm run bench` measures: the server under test (a child process, with the probe
 * preloaded), each against a fake Segmind in the bench process, on databases of the scratch
 * PostgreSQL; and the API set-up of scenarios 1 to 3 (server, baseline, keys and seeded rows).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { createDb, type Db } from '../../src/db/client.ts';
import { startSimulator, type SimulatorHandle } from '../../src/upstream/simulator/index.ts';
import { ask, spawnChild, waitIdle, watchRss, type Child } from './lib.ts';
import type { BenchOptions } from './report.ts';

type CreatedApiKey = Awaited<ReturnType<typeof createApiKey>>;

export const globalId = (id: string) => Buffer.from(`Generation:${id}`).toString('base64');

export async function postJson(url: string, body: unknown, headers: Record<string, string>) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return (await response.json()) as { data?: unknown; errors?: unknown[] };
}

/** The SQL statements the server sent during one action. */
export async function countSql(server: Child, action: () => Promise<unknown>): Promise<string[]> {
  await ask(server, { sql: 'start' });
  await action();
  return (await ask<{ statements?: string[] }>(server, { sql: 'stop' })).statements ?? [];
}

/** A server of its own, on a database of its own, against a fake of its own; `stop()` ends all three. */
export interface IsolatedServer {
  fake: SimulatorHandle;
  fakeKey: string;
  server: Child;
  db: Db;
  graphqlUrl: string;
  stop(): Promise<void>;
}

/** How the bench starts servers under test: the shared environment, the command, fresh databases. */
export interface Servers {
  options: BenchOptions;
  /** The scratch directory of this run. */
  work: string;
  createDatabase(): Promise<string>;
  env: NodeJS.ProcessEnv;
  /** Node's arguments for the server under test. */
  command: string[];
  /** The server under test, resolved with its URL once it logs that it has started. */
  start(env: NodeJS.ProcessEnv): Promise<Child>;
  /** A further server with the default polling unless `overrides` say otherwise. */
  isolated(fakeOptions: { mediaDir: string; queueMs: number; processingMs: number }, dataDir: string, overrides?: Record<string, string>): Promise<IsolatedServer>;
}

export function benchServers(options: BenchOptions, scratch: { work: string; createDatabase(): Promise<string> }, databaseUrl: string, fake: { url: string; key: string }): Servers {
  const { work } = scratch;
  const createDatabase = () => scratch.createDatabase();
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    SEGMIND_API_KEY: fake.key,
    SEGMIND_BASE_URL: fake.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: join(work, 'data'),
    LOG_LEVEL: 'info',
    NODE_ENV: 'production',
    RATE_LIMIT_PER_MINUTE: '1000000',
    MAX_CONCURRENT_PER_KEY: '1000000',
  };
  // `npm start`'s command (package.json; BENCH_NODE_FLAGS adds Node flags to measure them), with the
  // probe imported after ./src/require-node.mjs, so the probe too comes from Node's compile cache.
  const command = [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), '--import', './src/require-node.mjs', '--import', './scripts/bench/probe.ts', 'src/server.ts'];
  const start = (serverEnv: NodeJS.ProcessEnv) => {
    // The server listens, then its job engine starts: it is ready for the scenarios after both lines.
    let origin: string | null = null;
    return spawnChild(command, serverEnv, (line) => {
      // The line names the GraphQL endpoint; the child's URL is its origin.
      if (line.includes('extendql is listening')) origin = new URL((JSON.parse(line) as { url: string }).url.replace('localhost', '127.0.0.1')).origin;
      return line.includes('job engine started') ? origin : null;
    });
  };
  const isolated: Servers['isolated'] = async (fakeOptions, dataDir, overrides = {}) => {
    const fakeKey = `sk-bench-${randomBytes(12).toString('hex')}`;
    const ownFake = await startSimulator({ apiKey: fakeKey, credits: 1e9, ...fakeOptions });
    const ownDatabase = await createDatabase();
    const child = await start({ ...env, DATABASE_URL: ownDatabase, SEGMIND_API_KEY: fakeKey, SEGMIND_BASE_URL: ownFake.url, DATA_DIR: dataDir, ...overrides });
    const childDb = createDb(ownDatabase, { max: 2 });
    return {
      fake: ownFake,
      fakeKey,
      server: child,
      db: childDb,
      graphqlUrl: `${child.url}/graphql`,
      async stop() {
        await childDb.$disconnect();
        await child.stop();
        await ownFake.close();
      },
    };
  };
  return { options, work, createDatabase, env, command, start, isolated };
}

/** Rows that look like finished generations: chains of three, most with a stored video. */
async function seed(db: Db, apiKeyId: string, publicBaseUrl: string, count: number) {
  let previous: string | null = null;
  let first = '';
  for (let i = 0; i < count; i++) {
    const id = uuidv7();
    first ||= id;
    const videoId = randomBytes(16).toString('base64url');
    const created = new Date(Date.now() - (count - i) * 60_000);
    const sourceId: string | null = i % 3 === 0 ? null : previous;
    await db.generation.create({
      data: {
        id,
        apiKeyId,
        status: 'SUCCEEDED',
        prompt: `a slow pan across the harbour at dusk, take ${i}`,
        duration: 5,
        quality: 'Q540P',
        motionMode: 'NORMAL',
        sourceVideoUrl: sourceId ? `${publicBaseUrl}/videos/${randomBytes(16).toString('base64url')}.mp4` : 'https://videos.example/harbour.mp4',
        sourceId,
        paramsHash: randomBytes(32).toString('hex'),
        plannedVideoId: videoId,
        submitStartedAt: created,
        upstreamRequestId: `bench-${randomBytes(8).toString('hex')}`,
        upstreamStatus: 'COMPLETED',
        pollCount: 4,
        cost: 0.3,
        createdAt: created,
        startedAt: created,
        completedAt: new Date(created.getTime() + 30_000),
      },
    });
    if (i % 4 !== 3) {
      await db.video.create({
        data: { id: videoId, generationId: id, storageKey: `${videoId}.mp4`, contentType: 'video/mp4', byteSize: 1_843_211, width: 960, height: 540, durationSeconds: 10, sha256: randomBytes(32).toString('hex') },
      });
    }
    previous = id;
  }
  return first;
}

/** Scenarios 1 to 3: the API-only server, the baseline server, their keys and the reader's rows. */
export interface ApiBench {
  server: Child;
  baseline: Child;
  graphqlUrl: string;
  databaseUrl: string;
  /** The bench's own connection to the server's database. */
  db: Db;
  reader: CreatedApiKey;
  writers: CreatedApiKey[];
  /** The baseline writes rows of keys of its own: its inserts must not grow the subject's per-key data. */
  baselineWriters: CreatedApiKey[];
  /** The raw id of the reader's first generation. */
  oneId: string;
  /** Waits until both servers are idle. */
  settle(): Promise<void>;
  /** Another API-only server on the same database, with `overrides` in its environment (stop it when done). */
  startVariant(overrides: Record<string, string>): Promise<Child>;
  probed: { subject: Child; baseline: Child };
  /** Stops both servers; answers the server's peak RSS in MB. */
  stop(): Promise<number>;
}

/**
 * Scenarios 1 to 3 measure the API process as it is deployed beside `npm run worker`
 * (WORKER_ENABLED=false): accepted generations stay queued, and no job step shares the two cores
 * with the requests being measured. Scenarios 4 to 7 run servers that work their jobs.
 */
export async function startApiBench(servers: Servers, databaseUrl: string, fake: SimulatorHandle): Promise<ApiBench> {
  const { options, env } = servers;
  const server = await servers.start({ ...env, WORKER_ENABLED: 'false' });
  const baseline = await spawnChild(['--import', './scripts/bench/probe.ts', 'scripts/bench/baseline-server.ts'], { ...env, PUBLIC_BASE_URL: server.url }, (line) =>
    line.startsWith('{"listening"') ? (JSON.parse(line) as { listening: string }).listening : null,
  );
  const rss = watchRss(server.process.pid);
  const db = createDb(databaseUrl, { max: 4 });
  const reader = await createApiKey(db, 'bench reader');
  const writers = await Promise.all(Array.from({ length: options.writeKeys }, (_, i) => createApiKey(db, `bench writer ${i}`)));
  const baselineWriters = await Promise.all(Array.from({ length: options.writeKeys }, (_, i) => createApiKey(db, `bench baseline writer ${i}`)));
  const oneId = await seed(db, reader.id, server.url, options.seeded);
  console.log(`bench: server ${server.url}, baseline ${baseline.url}, fake Segmind ${fake.url}, ${options.runs} runs of ${options.durationS} s per side`);
  return {
    server,
    baseline,
    graphqlUrl: `${server.url}/graphql`,
    databaseUrl,
    db,
    reader,
    writers,
    baselineWriters,
    oneId,
    settle: () => waitIdle([server.process.pid, baseline.process.pid]),
    startVariant: (overrides) => servers.start({ ...env, WORKER_ENABLED: 'false', ...overrides }),
    probed: { subject: server, baseline },
    async stop() {
      const peakRss = rss.stop();
      await db.$disconnect();
      await baseline.stop();
      await server.stop();
      return peakRss;
    },
  };
}
