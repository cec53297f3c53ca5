/**
 * `npm run soak`: 500 concurrent extendVideo calls against a slow fake Segmind that injects
 * faults into about 10% of its answers, then waits until every generation is terminal. Reports
 * accepted / succeeded / failed (by reason, transient or permanent) / lost, duplicate billable
 * submissions, process crashes, mutation latency and peak RSS, and writes them to RELIABILITY.md.
 *
 * `npm run soak -- --chaos` does the same while it kills PostgreSQL with SIGKILL twice, kills Redis
 * once (with a second, API-only instance following generations over Redis), fills the video storage
 * once, and sends a burst of hostile requests from a second key. Everything runs on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApiKey } from '../src/auth/api-keys.ts';
import { createDb, type Db } from '../src/db/client.ts';
import { startKillablePostgres, type KillablePostgres } from './lib/killable-postgres.ts';
import { startRedis, type RedisServer } from '../test/helpers/redis.ts';
import { scratchPostgres } from './lib/scratch-postgres.ts';
import { mountSmallDisk, runChaos } from './soak/chaos.ts';
import { follow, type Follower } from './soak/follow.ts';
import { hostileBurst, type HostileOutcomes } from './soak/hostile.ts';
import { fireMutations, startFaultyFake, type Calls } from './soak/load.ts';
import { startServerProcess, type ServerProcess } from './soak/processes.ts';
import { writeReport, type Figures } from './soak/report.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '500' },
    keys: { type: 'string', default: '25' },
    'fault-rate': { type: 'string', default: '0.1' },
    chaos: { type: 'boolean', default: false },
  },
});
const COUNT = Number(values.count);
/** Calls are spread over this many API keys, as from many tenants: one key's requests are admitted one at a time. */
const KEYS = Number(values.keys);
const FAULT_RATE = Number(values['fault-rate']);
const CHAOS = values.chaos;
const DEADLINE_MS = 600_000;
/** Generations followed over SSE on the second instance (chaos only). */
const FOLLOWED = 50;

/** Codes that name a passing condition: a generation that failed with one of them was given up on too early. */
const TRANSIENT = new Set([
  'RATE_LIMITED', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNREACHABLE', 'UPSTREAM_CIRCUIT_OPEN',
  'UPSTREAM_PROTOCOL', 'OUTPUT_TRUNCATED', 'OUTPUT_UNREACHABLE', 'STORAGE_UNAVAILABLE', 'DEADLINE_EXCEEDED',
  'UPSTREAM_SUBMISSION_UNKNOWN', 'SERVICE_UNAVAILABLE',
]);

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

interface Infrastructure {
  work: string;
  databaseUrl: string;
  postgres: KillablePostgres | null;
  redis: RedisServer | null;
  storageDir: string | null;
  close(): Promise<void>;
}

async function startInfrastructure(): Promise<Infrastructure> {
  if (!CHAOS) {
    const scratch = await scratchPostgres('soak');
    return { work: scratch.work, databaseUrl: await scratch.createDatabase(), postgres: null, redis: null, storageDir: null, close: () => scratch.close() };
  }
  const work = await mkdtemp(join(tmpdir(), 'extendql-chaos-'));
  await chmod(work, 0o755);
  const postgres = await startKillablePostgres(join(work, 'postgres'));
  const redis = await startRedis();
  const storageDir = join(work, 'videos');
  const disk = await mountSmallDisk(storageDir, '1g');
  return {
    work,
    databaseUrl: await postgres.createDatabase('extendql_chaos'),
    postgres,
    redis,
    storageDir: disk ? storageDir : null,
    async close() {
      await redis.kill();
      await postgres.stop();
      await disk?.unmount();
      await rm(work, { recursive: true, force: true });
    },
  };
}

function serverEnv(infra: Infrastructure, segmind: { key: string; url: string }): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: infra.databaseUrl,
    SEGMIND_API_KEY: segmind.key,
    SEGMIND_BASE_URL: segmind.url,
    HOST: '127.0.0.1',
    DATA_DIR: join(infra.work, 'data'),
    ...(infra.storageDir && { STORAGE_DIR: infra.storageDir }),
    ...(infra.redis && { REDIS_URL: infra.redis.url }),
    NODE_ENV: 'production',
    RATE_LIMIT_PER_MINUTE: '100000',
    MAX_CONCURRENT_PER_KEY: '100000',
    UPSTREAM_CIRCUIT_THRESHOLD: '50',
    UPSTREAM_CIRCUIT_COOLDOWN_MS: '2000',
    GENERATION_DEADLINE_MS: String(DEADLINE_MS),
    WORKER_CONCURRENCY: '16',
  };
}

/** Reads the soak's generations, riding out the database outages the chaos causes. */
async function readRows(db: Db) {
  for (;;) {
    try {
      return await db.generation.findMany({ where: { prompt: { startsWith: 'soak #' } }, select: { status: true, errorCode: true, prompt: true } });
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELED'];

async function waitForTerminal(db: Db, calls: () => Calls | null, started: number) {
  let rows = await readRows(db);
  while (Date.now() - started < DEADLINE_MS + 60_000) {
    const settled = calls();
    if (settled && rows.length >= settled.accepted.size && rows.every((row) => TERMINAL.includes(row.status))) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rows = await readRows(db);
  }
  return rows;
}

interface Run {
  calls: Calls;
  rows: Awaited<ReturnType<typeof readRows>>;
  elapsedS: number;
  chaosLog: string[];
  hostile: HostileOutcomes;
  slowBodies: string;
  followers: Followed[];
}

/** A follower on the second instance, and the call whose generation it follows. */
type Followed = Follower & { prompt: string };

/** Fires the load (and, with --chaos, the chaos), and waits until every accepted generation is terminal. */
async function drive(infra: Infrastructure, db: Db, servers: ServerProcess[], keys: string[], hostileKey: string): Promise<Run> {
  const [api, follower] = [servers[0]!, servers[1]];
  const runId = randomBytes(4).toString('hex');
  const followers: Followed[] = [];
  const stopFollowing = new AbortController();
  let settled: Calls | null = null;
  let firstAccepted: (prompt: string) => void = () => {};
  const first = new Promise<string>((resolve) => (firstAccepted = resolve));
  const started = Date.now();
  // The first FOLLOWED accepted generations are followed on the second instance from the moment they are
  // accepted, so the followers live through the Redis outage.
  const onAccepted = (prompt: string, accepted: { id: string; key: string }) => {
    firstAccepted(prompt);
    if (follower && followers.length < FOLLOWED) {
      followers.push(Object.assign(follow(follower.url, accepted.key, accepted.id, started + DEADLINE_MS, stopFollowing.signal), { prompt }));
    }
  };
  // With chaos, the calls are spread over the first 30 s, so that some meet the first database outage.
  const load = fireMutations(api.url, keys, COUNT, { runId, spreadMs: CHAOS ? 30_000 : 0, onAccepted }).then((calls) => (settled = calls));
  const burstResult: { outcomes: HostileOutcomes; slow: { outcome(): string; close(): void } | null } = { outcomes: {}, slow: null };
  const burst = async () => {
    await first;
    const foreign = (await db.generation.findFirst({ where: { prompt: { startsWith: 'soak #' } }, select: { id: true } }))!.id;
    Object.assign(burstResult, await hostileBurst(api.url(), hostileKey, foreign));
  };
  const chaos = CHAOS ? runChaos({ postgres: infra.postgres!, redis: infra.redis!, storageDir: infra.storageDir }, burst) : Promise.resolve([]);
  const calls = await load;
  const rows = await waitForTerminal(db, () => settled, started);
  const elapsedS = (Date.now() - started) / 1000;
  const chaosLog = await chaos;
  await Promise.race([Promise.all(followers.map((f) => f.done)), new Promise((resolve) => setTimeout(resolve, 30_000))]);
  stopFollowing.abort();
  const slowBodies = burstResult.slow?.outcome() ?? '';
  burstResult.slow?.close();
  return { calls, rows, elapsedS, chaosLog, hostile: burstResult.outcomes, slowBodies, followers };
}

function figuresOf(run: Run, fake: Awaited<ReturnType<typeof startFaultyFake>>, servers: ServerProcess[]): Figures {
  const { rows, calls } = run;
  const failedBy: Record<string, number> = {};
  for (const row of rows.filter((r) => r.status === 'FAILED')) failedBy[row.errorCode ?? 'UNKNOWN'] = (failedBy[row.errorCode ?? 'UNKNOWN'] ?? 0) + 1;
  const transient = Object.fromEntries(Object.entries(failedBy).filter(([code]) => TRANSIENT.has(code)));
  const permanent = Object.fromEntries(Object.entries(failedBy).filter(([code]) => !TRANSIENT.has(code)));
  const recorded = new Set(rows.map((row) => row.prompt));
  const lost = [...calls.accepted.keys()].filter((prompt) => !recorded.has(prompt)).length + rows.filter((row) => !TERMINAL.includes(row.status)).length;
  const billable = new Map<string, number>();
  for (const job of fake.fake.jobs().filter((j) => j.params.prompt.startsWith('soak #'))) billable.set(job.params.prompt, (billable.get(job.params.prompt) ?? 0) + 1);
  const finalOf = new Map(rows.map((row) => [row.prompt, row.status]));
  return {
    count: COUNT,
    accepted: calls.accepted.size,
    rejected: calls.rejected,
    retried: calls.retried,
    succeeded: rows.filter((row) => row.status === 'SUCCEEDED').length,
    transient,
    permanent,
    lost,
    duplicates: [...billable.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0),
    crashes: Object.fromEntries(servers.map((s) => [s.name, s.crashes()])),
    injected: `${fake.injected()} of ${fake.fake.requests.length} answers`,
    latenciesMs: calls.latenciesMs,
    peakRssMb: Object.fromEntries(servers.map((s) => [s.name, s.peakRssMb()])),
    elapsedS: run.elapsedS,
    chaosLog: run.chaosLog,
    hostile: { ...run.hostile, ...(run.slowBodies && { 'request bodies sent a byte a second (5 sockets)': run.slowBodies }) },
    followers: run.followers.length
      ? {
          total: run.followers.length,
          sawFinal: run.followers.filter((f) => f.last !== null && f.last === finalOf.get(f.prompt)).length,
          reopened: run.followers.reduce((sum, f) => sum + f.reopened, 0),
        }
      : null,
  };
}

async function main() {
  const infra = await startInfrastructure();
  const segmindKey = `sk-soak-${randomBytes(12).toString('hex')}`;
  const fake = await startFaultyFake(segmindKey, infra.work, FAULT_RATE);
  const env = serverEnv(infra, { key: segmindKey, url: fake.fake.url });
  const servers = [await startServerProcess('server (API and worker)', { ...env, PORT: String(await freePort()) })];
  if (CHAOS) servers.push(await startServerProcess('second instance (API only)', { ...env, PORT: String(await freePort()), WORKER_ENABLED: 'false' }));
  const db = createDb(infra.databaseUrl, { max: 4 });
  const keys = await Promise.all(Array.from({ length: KEYS }, (_, i) => createApiKey(db, `soak ${i}`).then((created) => created.key)));
  const hostileKey = (await createApiKey(db, 'hostile')).key;

  console.log(`soak${CHAOS ? ' with chaos' : ''}: ${COUNT} concurrent extendVideo calls from ${KEYS} keys against ${servers[0]!.url()} (${FAULT_RATE * 100}% faults)`);
  const run = await drive(infra, db, servers, keys, hostileKey);
  const figures = figuresOf(run, fake, servers);
  const command = `npm run soak -- --count ${COUNT} --keys ${KEYS} --fault-rate ${FAULT_RATE}${CHAOS ? ' --chaos' : ''}`;
  await writeReport(CHAOS ? 'chaos' : 'plain', command, figures);

  for (const server of servers) await server.stop();
  await db.$disconnect();
  await fake.stop();
  await infra.close();
  const crashed = Object.values(figures.crashes).some((n) => n > 0);
  if (figures.lost > 0 || figures.duplicates > 0 || crashed || Object.keys(figures.transient).length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
