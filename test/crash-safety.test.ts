import { TERMINAL_STATUSES } from '../src/generations/lifecycle.ts';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/auth/api-keys.ts';
import { createDb, type Db } from '../src/db/client.ts';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../src/upstream/simulator/index.ts';
import { ExtendVideoDocument, GenerationDocument, type GenerationQuery } from './gql/graphql.ts';
import { createFreshDatabase, executorFor, killAllChildServers, startChildServer, type ChildServer, type Execute } from './helpers/child-server.ts';
import { startStallProxy, type StallProxy } from './helpers/stall-proxy.ts';

// Each test starts the real server (`node src/server.ts`) as a child process against
// its own database, data directory and fake Segmind, stops it hard (SIGKILL) or gently (SIGTERM) at
// one stage of a generation, starts a new process on the same database and DATA_DIR, and checks
// that the generation ends truthfully and that Segmind billed at most what it should.

const MEDIA_DIR = join(tmpdir(), 'extendql-test-media');
const TERMINAL = new Set<string>(TERMINAL_STATUSES);
/** Recovery of a step whose process died waits for its 10 s heartbeat to go stale. */
const RECOVERY_ATTEMPTS = 250; // × 200 ms = 50 s at most
const TEST_TIMEOUT = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something truthy; the bound only stops a broken run from hanging. */
async function waitFor<T>(what: string, check: () => Promise<T> | T, attempts = 150, intervalMs = 100): Promise<NonNullable<T>> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const value = await check();
    if (value) return value;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

type Generation = NonNullable<GenerationQuery['generation']>;

interface Harness {
  databaseUrl: string;
  dataDir: string;
  segmind: SimulatorHandle;
  segmindKey: string;
  proxy: StallProxy | null;
  servers: ChildServer[];
  /** Starts a server process on this harness's database and DATA_DIR. */
  start(env?: Record<string, string>): Promise<ChildServer>;
  /** Our own database client (after the first start has migrated the schema). */
  db(): Db;
  /** An API client for `server`, with a key created directly in the database. */
  client(server: ChildServer): Promise<Execute>;
  close(): Promise<void>;
}

const harnesses: Harness[] = [];

async function createHarness(options: { segmind?: Partial<SimulatorOptions>; proxy?: boolean; env?: Record<string, string> } = {}): Promise<Harness> {
  const databaseUrl = await createFreshDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'extendql-crash-'));
  const segmindKey = `sk-crash-${randomBytes(16).toString('hex')}`;
  const segmind = await startSimulator({ apiKey: segmindKey, mediaDir: MEDIA_DIR, queueMs: 100, processingMs: 300, ...options.segmind });
  const proxy = options.proxy ? await startStallProxy(segmind.url) : null;
  const servers: ChildServer[] = [];
  let db: Db | null = null;
  let key: string | null = null;

  const harness: Harness = {
    databaseUrl,
    dataDir,
    segmind,
    segmindKey,
    proxy,
    servers,
    async start(env = {}) {
      const server = await startChildServer({
        DATABASE_URL: databaseUrl,
        SEGMIND_API_KEY: segmindKey,
        SEGMIND_BASE_URL: proxy?.url ?? segmind.url,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: dataDir,
        POLL_INTERVAL_MS: '100',
        POLL_MAX_INTERVAL_MS: '300',
        JOB_SUPERVISE_INTERVAL_SECONDS: '1',
        LOG_LEVEL: 'info',
        NODE_ENV: 'test',
        ...options.env,
        ...env,
      });
      servers.push(server);
      return server;
    },
    db() {
      db ??= createDb(databaseUrl, { max: 3 });
      return db;
    },
    async client(server) {
      key ??= (await createApiKey(harness.db(), 'crash-safety')).key;
      return executorFor(server.graphqlUrl, key);
    },
    async close() {
      await db?.$disconnect();
      await proxy?.close();
      await segmind.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  harnesses.push(harness);
  return harness;
}

afterEach(async () => {
  // Whatever happened in the test: no server process outlives it.
  await killAllChildServers();
  for (const harness of harnesses.splice(0)) await harness.close().catch(() => {});
});

/** The requests the fake Segmind received that start a billable job. */
const submissions = (h: Harness) => h.segmind.requests.filter((r) => r.method === 'POST' && r.path.includes('pixverse-5-extend'));
const outputGets = (h: Harness) => h.segmind.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/outputs/'));

async function extend(execute: Execute, prompt: string): Promise<string> {
  const result = await execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/clip.mp4', prompt, quality: 'Q540P', duration: 5 } });
  expect(result.errors).toBeUndefined();
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(`extendVideo answered ${JSON.stringify(extended)}`);
  expect(extended.generation.status).toBe('QUEUED');
  return extended.generation.id;
}

async function waitForTerminal(execute: Execute, id: string): Promise<Generation> {
  let last: Generation | null | undefined;
  for (let attempt = 0; attempt < RECOVERY_ATTEMPTS; attempt++) {
    const result = await execute(GenerationDocument, { id });
    expect(result.errors).toBeUndefined();
    last = result.data?.generation;
    if (last && TERMINAL.has(last.status)) return last;
    await sleep(200);
  }
  throw new Error(`generation ${id} did not finish; last seen ${JSON.stringify(last)}`);
}

const rowOf = (h: Harness, id: string) => h.db().generation.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id }, include: { video: true } });

async function jobStates(h: Harness, id: string): Promise<string[]> {
  const rows = await h.db().$queryRaw<{ state: string }[]>`SELECT state::text AS state FROM pgboss.job WHERE singleton_key = ${decodeGlobalID(id).id} ORDER BY created_on`;
  return rows.map((row) => row.state);
}

/** Waits until the job engine holds no unfinished step for the generation. */
const waitForQuietQueue = (h: Harness, id: string) =>
  waitFor('the queue to settle', async () => (await jobStates(h, id)).every((state) => !['created', 'retry', 'active'].includes(state)), 150);

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The bytes the fake Segmind serves for its (only) finished job. */
async function upstreamBytes(h: Harness): Promise<Buffer> {
  const [job] = h.segmind.jobs();
  expect(job?.outputUrl).toBeDefined();
  return Buffer.from(await (await fetch(job!.outputUrl!)).arrayBuffer());
}

/** Downloads the generation's video from the server and checks it is whole and matches upstream. */
async function expectWholeVideo(h: Harness, generation: Generation) {
  expect(generation.video).not.toBeNull();
  const video = generation.video!;
  const response = await fetch(video.url);
  expect(response.status).toBe(200);
  const bytes = Buffer.from(await response.arrayBuffer());
  expect(bytes.length).toBe(video.byteSize);
  expect(sha256(bytes)).toBe(video.sha256);
  expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp');
  const original = await upstreamBytes(h);
  expect(video.byteSize).toBe(original.length);
  expect(video.sha256).toBe(sha256(original));
}

/**
 * Stored videos: every object outside `.tmp` is a complete copy of the upstream MP4, and every
 * Video row's object is there with its recorded size and hash. Returns the objects no row names.
 */
async function expectNoPartialObjects(h: Harness): Promise<string[]> {
  const root = join(h.dataDir, 'videos');
  const original = await upstreamBytes(h);
  const entries = (await readdir(root)).filter((name) => name !== '.tmp');
  for (const name of entries) {
    expect(name).toMatch(/^[A-Za-z0-9_-]+\.mp4$/);
    const bytes = await readFile(join(root, name));
    expect(bytes.length, name).toBe(original.length);
    expect(sha256(bytes), name).toBe(sha256(original));
  }
  const videos = await h.db().video.findMany();
  for (const video of videos) {
    expect(entries).toContain(video.storageKey);
    expect(video.byteSize).toBe(original.length);
    expect(video.sha256).toBe(sha256(original));
  }
  return entries.filter((name) => !videos.some((video) => video.storageKey === name));
}

/**
 * Holds one kind of statement of the server in the database: a trigger makes it wait for an
 * advisory lock that this test holds and, once let go, raise, so that it never commits. Used to
 * stop the worker at an exact point, SIGKILL it there, then let the orphaned statement fail.
 */
async function holdStatement(h: Harness, name: string, triggerTiming: string, lock: number) {
  const gate = new pg.Client({ connectionString: h.databaseUrl });
  await gate.connect();
  await gate.query(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock(${lock});
      RAISE EXCEPTION 'crash-safety test: statement held back';
    END $$;
    CREATE TRIGGER ${name} ${triggerTiming} EXECUTE FUNCTION ${name}();`);
  await gate.query('SELECT pg_advisory_lock($1)', [lock]);
  const waiting = async () =>
    (
      await gate.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [lock],
      )
    ).rows[0]!.n > 0;
  return {
    /** Resolves once a server statement is waiting at the gate. */
    reached: () => waitFor(`a statement to reach ${name}`, waiting),
    /** Lets the held statement fail, waits for it to end, and removes the trigger. */
    async release() {
      await gate.query('SELECT pg_advisory_unlock($1)', [lock]);
      await waitFor('the held statement to end', async () => !(await waiting()));
      await gate.query(`DROP TRIGGER ${name} ON ${triggerTiming.match(/ ON ("\w+")/)![1]}; DROP FUNCTION ${name}()`);
    },
    end: () => gate.end(),
  };
}

function expectNoKeyLeak(h: Harness) {
  expect(h.servers.length).toBeGreaterThan(0);
  for (const server of h.servers) expect(server.output()).not.toContain(h.segmindKey);
}

describe('crash safety: kill -9 at each stage, then restart', () => {
  it(
    'after the row is written, before anything is submitted: the restarted server submits it once',
    async () => {
      const h = await createHarness();
      const first = await h.start();
      const execute = await h.client(first);

      // Hold the worker right at its claim of the submission (the UPDATE that sets submitStartedAt):
      // the row and its step are committed, the worker has taken the step, nothing has left for Segmind.
      const gate = await holdStatement(
        h,
        'crash_test_hold_claim',
        'BEFORE UPDATE ON "Generation" FOR EACH ROW WHEN (OLD."submitStartedAt" IS NULL AND NEW."submitStartedAt" IS NOT NULL)',
        73_410_001,
      );
      try {
        const id = await extend(execute, 'killed before submit');
        await gate.reached();
        expect(await rowOf(h, id)).toMatchObject({ status: 'QUEUED', submitStartedAt: null, upstreamRequestId: null });
        expect(await jobStates(h, id)).toEqual(['active']);
        expect(submissions(h)).toHaveLength(0);

        expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
        expect(submissions(h)).toHaveLength(0);
        // The orphaned claim fails instead of committing after its process is gone.
        await gate.release();
        expect(await rowOf(h, id)).toMatchObject({ status: 'QUEUED', submitStartedAt: null, upstreamRequestId: null });

        const second = await h.start();
        const done = await waitForTerminal(await h.client(second), id);
        expect(done.status).toBe('SUCCEEDED');
        expect(done.error).toBeNull();
        await expectWholeVideo(h, done);
        await waitForQuietQueue(h, id);
        expect(submissions(h)).toHaveLength(1);
        expect(h.segmind.jobs()).toHaveLength(1);
        expect(await expectNoPartialObjects(h)).toEqual([]);
        expectNoKeyLeak(h);
      } finally {
        await gate.end();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'after the submission reached Segmind, before its request_id was saved: fails as UPSTREAM_SUBMISSION_UNKNOWN, never resubmitted',
    async () => {
      const h = await createHarness();
      const first = await h.start();
      const execute = await h.client(first);
      // The fake creates (and bills) the job at once, but holds its answer back.
      h.segmind.faults.inject('submit', { kind: 'delay', ms: 5000 });

      const id = await extend(execute, 'killed while submitting');
      await waitFor('the fake to create the job', () => h.segmind.jobs().length === 1);
      expect(submissions(h)).toHaveLength(1);
      await waitFor('the claim to be recorded', async () => (await rowOf(h, id)).submitStartedAt !== null);
      expect(await rowOf(h, id)).toMatchObject({ status: 'RUNNING', upstreamRequestId: null });

      expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      const afterKill = await rowOf(h, id);
      expect(afterKill.submitStartedAt).not.toBeNull();
      expect(afterKill.upstreamRequestId).toBeNull();

      const second = await h.start();
      const done = await waitForTerminal(await h.client(second), id);
      expect(done.status).toBe('FAILED');
      expect(done.error?.code).toBe('UPSTREAM_SUBMISSION_UNKNOWN');
      expect(done.video).toBeNull();
      await waitForQuietQueue(h, id);
      // One billable submission, never repeated, and nobody asked about a job we can't name.
      expect(submissions(h)).toHaveLength(1);
      expect(h.segmind.jobs()).toHaveLength(1);
      expect(h.segmind.requests.filter((r) => r.path.startsWith('/v2/requests/'))).toHaveLength(0);
      expectNoKeyLeak(h);
    },
    TEST_TIMEOUT,
  );

  it(
    'while polling: the restarted server polls on and succeeds with one submission and a whole video',
    async () => {
      const h = await createHarness({ segmind: { queueMs: 200, processingMs: 3000 } });
      const first = await h.start();
      const execute = await h.client(first);

      const id = await extend(execute, 'killed while polling');
      const job = await waitFor('the fake to create the job', () => h.segmind.jobs()[0]);
      const polls = () => h.segmind.requests.filter((r) => r.method === 'GET' && r.path === `/v2/requests/${job.requestId}/status`);
      await waitFor('a first status poll', () => polls().length >= 1);
      // Kill in the middle of a poll step: its answer is held back, so the step is still running.
      h.segmind.faults.inject('status', { kind: 'delay', ms: 4000 });
      const seen = polls().length;
      await waitFor('a held status poll', () => polls().length > seen);
      const before = await rowOf(h, id);
      expect(before).toMatchObject({ status: 'RUNNING', upstreamRequestId: job.requestId, video: null });
      expect(await jobStates(h, id)).toContain('active');
      expect(h.segmind.jobs()[0]!.status).not.toBe('COMPLETED');

      expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

      const second = await h.start();
      const done = await waitForTerminal(await h.client(second), id);
      expect(done.status).toBe('SUCCEEDED');
      expect(done.error).toBeNull();
      await expectWholeVideo(h, done);
      await waitForQuietQueue(h, id);
      expect(submissions(h)).toHaveLength(1);
      expect(h.segmind.jobs()).toHaveLength(1);
      expect(await expectNoPartialObjects(h)).toEqual([]);
      expectNoKeyLeak(h);
    },
    TEST_TIMEOUT,
  );

  it(
    'while copying the MP4: no half-written video is ever stored, and the restarted server copies it whole',
    async () => {
      // Downloads go through a proxy that sends half of the MP4 and then stalls, so the process dies
      // with a partly written file on disk.
      const h = await createHarness({ proxy: true });
      const proxy = h.proxy!;
      proxy.stallOutputs(1, 0.5);
      const first = await h.start();
      const execute = await h.client(first);

      const id = await extend(execute, 'killed while copying');
      await waitFor('the output download to start', () => outputGets(h).length === 1 && proxy.stalled.length === 1, 300);
      const { sent, total } = proxy.stalled[0]!;
      const tmpDir = join(h.dataDir, 'videos', '.tmp');
      // The half that did arrive is on disk, in the temporary folder.
      const partial = await waitFor('the partial copy on disk', async () => {
        for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
          if ((await stat(join(tmpDir, name))).size === sent) return name;
        }
        return null;
      });
      expect(sent).toBeLessThan(total);
      expect(await rowOf(h, id)).toMatchObject({ status: 'RUNNING', video: null });

      expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      // Nothing outside .tmp: a reader can't find a half video under any key.
      expect((await readdir(join(h.dataDir, 'videos'))).filter((name) => name !== '.tmp')).toEqual([]);
      expect(await h.db().video.count()).toBe(0);

      const second = await h.start();
      const done = await waitForTerminal(await h.client(second), id);
      expect(done.status).toBe('SUCCEEDED');
      expect(done.error).toBeNull();
      await expectWholeVideo(h, done);
      await waitForQuietQueue(h, id);
      expect(submissions(h)).toHaveLength(1);
      expect(h.segmind.jobs()).toHaveLength(1);
      expect(outputGets(h).length).toBeGreaterThanOrEqual(2);
      expect(await expectNoPartialObjects(h)).toEqual([]);
      // The stored object is not the partial file renamed: that one, if still there, stays in .tmp.
      expect(done.video!.byteSize).toBe(total);
      const leftovers = await readdir(tmpDir);
      if (leftovers.includes(partial)) expect((await stat(join(tmpDir, partial))).size).toBe(sent);
      expectNoKeyLeak(h);
    },
    TEST_TIMEOUT,
  );

  it(
    'after the MP4 is stored, before its Video row commits: the restarted server finishes with a whole video',
    async () => {
      const h = await createHarness();
      const first = await h.start();
      const execute = await h.client(first);
      // Hold the worker at the INSERT of the Video row: the copy is already renamed into place.
      const gate = await holdStatement(h, 'crash_test_hold_video', 'BEFORE INSERT ON "Video" FOR EACH ROW', 73_410_002);
      try {
        const id = await extend(execute, 'killed before the video row');
        await gate.reached();
        const stored = (await readdir(join(h.dataDir, 'videos'))).filter((name) => name !== '.tmp');
        expect(stored).toHaveLength(1);

        expect(await first.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
        await gate.release();
        expect(await rowOf(h, id)).toMatchObject({ status: 'RUNNING', video: null });
        expect(await h.db().video.count()).toBe(0);

        const second = await h.start();
        const done = await waitForTerminal(await h.client(second), id);
        expect(done.status).toBe('SUCCEEDED');
        expect(done.error).toBeNull();
        await expectWholeVideo(h, done);
        await waitForQuietQueue(h, id);
        expect(submissions(h)).toHaveLength(1);
        expect(h.segmind.jobs()).toHaveLength(1);
        // Every stored object is whole, and the retried copy replaced the killed step's file
        // (the file name is fixed per generation), so nothing is orphaned.
        expect(await expectNoPartialObjects(h)).toEqual([]);
        expect((await h.db().video.findFirstOrThrow()).storageKey).toBe(stored[0]);
        expectNoKeyLeak(h);
      } finally {
        await gate.end();
      }
    },
    TEST_TIMEOUT,
  );
});

describe('graceful shutdown on SIGTERM', () => {
  it(
    'lets a running step finish within SHUTDOWN_GRACE_MS and exits with code 0',
    async () => {
      const grace = 8000;
      const h = await createHarness({ env: { SHUTDOWN_GRACE_MS: String(grace) } });
      const first = await h.start();
      const execute = await h.client(first);
      h.segmind.faults.inject('output', { kind: 'delay', ms: 2500 });

      const id = await extend(execute, 'terminated while copying');
      await waitFor('the output download to start', () => outputGets(h).length === 1, 300);
      const sentAt = Date.now();
      let exitedAt = 0;
      const exiting = first.kill('SIGTERM').then((exit) => ((exitedAt = Date.now()), exit));
      await waitFor('the shutdown to begin', () => first.logs().some((line) => String(line.msg).startsWith('shutting down')));
      await sleep(300);
      // Intake stopped while the step is still running: the process is alive, its port refuses.
      expect(exitedAt).toBe(0);
      await expect(fetch(first.graphqlUrl, { method: 'POST' })).rejects.toThrow();
      const exit = await exiting;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAt - sentAt).toBeLessThan(grace);
      // The step in flight was allowed to finish.
      const row = await rowOf(h, id);
      expect(row.status).toBe('SUCCEEDED');
      expect(row.video).not.toBeNull();

      const second = await h.start();
      const done = await waitForTerminal(await h.client(second), id);
      expect(done.status).toBe('SUCCEEDED');
      await expectWholeVideo(h, done);
      await waitForQuietQueue(h, id);
      expect(submissions(h)).toHaveLength(1);
      expect(await expectNoPartialObjects(h)).toEqual([]);
      expectNoKeyLeak(h);
    },
    TEST_TIMEOUT,
  );

  it(
    'parks a step that outlasts SHUTDOWN_GRACE_MS, exits with code 0, and the restarted server finishes it',
    async () => {
      const grace = 1500;
      const h = await createHarness({ env: { SHUTDOWN_GRACE_MS: String(grace) } });
      const first = await h.start();
      const execute = await h.client(first);
      h.segmind.faults.inject('output', { kind: 'delay', ms: 10_000 });

      const id = await extend(execute, 'terminated during a long copy');
      await waitFor('the output download to start', () => outputGets(h).length === 1, 300);
      const sentAt = Date.now();
      const exit = await first.kill('SIGTERM');
      const took = Date.now() - sentAt;
      expect(exit).toEqual({ code: 0, signal: null });
      // It waited for the step up to the grace period, not for the whole download.
      expect(took).toBeLessThan(grace + 3000);
      // Parked, not failed: the generation is still running and its step waits for another process.
      const row = await rowOf(h, id);
      expect(row).toMatchObject({ status: 'RUNNING', errorCode: null, video: null });
      const states = await jobStates(h, id);
      expect(states).not.toContain('active');
      expect(states.some((state) => state === 'created' || state === 'retry')).toBe(true);

      const second = await h.start();
      const done = await waitForTerminal(await h.client(second), id);
      expect(done.status).toBe('SUCCEEDED');
      await expectWholeVideo(h, done);
      await waitForQuietQueue(h, id);
      expect(submissions(h)).toHaveLength(1);
      expect(await expectNoPartialObjects(h)).toEqual([]);
      expectNoKeyLeak(h);
    },
    TEST_TIMEOUT,
  );
});
