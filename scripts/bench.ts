/**
 * `npm run bench`: starts the real server (a child process, on real PostgreSQL: DATABASE_URL or an
 * embedded cluster) with a fake Segmind, runs each scenario against it and against a baseline in
 * its own child process (scripts/bench/baseline-server.ts), alternating, and writes BENCHMARKS.md.
 * The load generator (autocannon) runs in this process. Everything is on 127.0.0.1.
 *
 * Options: --runs 3 --duration 5 (seconds per run) --only 1,2,3
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { v7 as uuidv7 } from 'uuid';
import { createApiKey } from '../src/auth/api-keys.js';
import { createDb, type Db } from '../src/db/client.js';
import { scratchPostgres } from './lib/scratch-postgres.js';
import { startSimulator } from '../src/upstream/simulator/index.js';
import { completionToSubscriber, endToEnd, endToEndDirect, p as percentile, type CompletionTiming, type Realtime } from './bench/realtime.js';
import { compare, median, load, medianOf, spawnChild, waitIdle, watchRss, type Child, type Comparison } from './bench/lib.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, only: { type: 'string', default: '1,2,3,6,7' } },
});
const RUNS = Number(values.runs);
const DURATION_S = Number(values.duration);
const WARMUP_S = 1;
const ONLY = new Set(values.only.split(',').map(Number));
const SEEDED = 120;
const WRITE_KEYS = 50;

const globalId = (id: string) => Buffer.from(`Generation:${id}`).toString('base64');
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

interface Row {
  scenario: string;
  figure: string;
  subject: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: string;
}

/** Rows that look like finished generations: chains of three, most with a stored video. */
async function seed(db: Db, apiKeyId: string, publicBaseUrl: string) {
  let previous: string | null = null;
  let first = '';
  for (let i = 0; i < SEEDED; i++) {
    const id = uuidv7();
    first ||= id;
    const videoId = randomBytes(16).toString('base64url');
    const created = new Date(Date.now() - (SEEDED - i) * 60_000);
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

async function postJson(url: string, body: unknown, headers: Record<string, string>) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return (await response.json()) as { data?: unknown; errors?: unknown[] };
}

/** Sends a message to the server's probe (scripts/bench/probe.ts) and waits for its answer. */
const ask = <T>(server: Child, message: object) =>
  new Promise<T>((resolve) => {
    server.process.once('message', (answer) => resolve(answer as T));
    server.process.send(message);
  });

/** The SQL statements the server sent during one action. */
async function countSql(server: Child, action: () => Promise<unknown>): Promise<string[]> {
  await ask(server, { sql: 'start' });
  await action();
  return (await ask<{ statements?: string[] }>(server, { sql: 'stop' })).statements ?? [];
}

interface ProfileSummary {
  totalMs: number;
  places: { name: string; ms: number }[];
  functions: { name: string; ms: number }[];
}

/** One more run of the subject under the CPU profiler (not part of the figures), summarized. */
async function profiled(server: Child, label: string, run: () => Promise<unknown>): Promise<string> {
  await ask(server, { profile: 'start' });
  await run();
  const { summary } = await ask<{ summary: ProfileSummary }>(server, { profile: 'stop' });
  const pct = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(0)}%`;
  return `${label} — CPU profile of the server over one extra ${DURATION_S} s run (node:inspector sampling profiler in the server process, not part of the figures; ${summary.totalMs} ms sampled). Self time by place: ${summary.places.map((p) => `${p.name} ${pct(p.ms)}`).join(', ')}. Top functions: ${summary.functions.slice(0, 8).map((f) => `\`${f.name}\` ${pct(f.ms)}`).join(', ')}.`;
}

function comparisonRows(scenario: string, c: Comparison, targets: { rps?: number; p99?: number; p50?: number; p99AbsMs?: number }): Row[] {
  const rows: Row[] = [];
  const s = (key: 'rps' | 'p50' | 'p99') => medianOf(c.subject, key);
  const b = (key: 'rps' | 'p50' | 'p99') => medianOf(c.baseline, key);
  const add = (figure: string, key: 'rps' | 'p50' | 'p99', unit: string, target: string, met: boolean | null) =>
    rows.push({
      scenario,
      figure,
      subject: `${fmt(s(key))} ${unit}`,
      baseline: `${fmt(b(key))} ${unit}`,
      ratio: `${fmt(s(key) / b(key), 2)}×`,
      target,
      verdict: met === null ? '—' : met ? 'met' : '**missed**',
    });
  add('throughput', 'rps', 'req/s', targets.rps ? `≥ ${targets.rps}× baseline` : '—', targets.rps ? s('rps') >= targets.rps * b('rps') : null);
  add('latency p50', 'p50', 'ms', targets.p50 ? `≤ ${targets.p50}× baseline` : '—', targets.p50 ? s('p50') <= targets.p50 * b('p50') : null);
  const p99Targets: string[] = [];
  let p99Met: boolean | null = null;
  if (targets.p99) {
    p99Targets.push(`≤ ${targets.p99}× baseline`);
    p99Met = s('p99') <= targets.p99 * b('p99');
  }
  if (targets.p99AbsMs) {
    p99Targets.push(`≤ ${targets.p99AbsMs} ms`);
    p99Met = (p99Met ?? true) && s('p99') <= targets.p99AbsMs;
  }
  add('latency p99', 'p99', 'ms', p99Targets.join(', ') || '—', p99Met);
  return rows;
}

const runsText = (c: Comparison) =>
  `subject runs (req/s, p50, p99 ms): ${c.subject.map((r) => `${fmt(r.rps, 0)}/${r.p50}/${r.p99}`).join(', ')}; ` +
  `baseline runs: ${c.baseline.map((r) => `${fmt(r.rps, 0)}/${r.p50}/${r.p99}`).join(', ')}; ` +
  `bad responses (errors, timeouts, non-2xx): subject ${c.subject.reduce((n, r) => n + r.bad, 0)}, baseline ${c.baseline.reduce((n, r) => n + r.bad, 0)}`;

async function main() {
  const wallStart = Date.now();
  const scratch = await scratchPostgres('bench');
  const work = scratch.work;
  const createDatabase = () => scratch.createDatabase();
  const databaseUrl = await createDatabase();

  // The fake keeps jobs queued for 10 minutes and the server polls every minute, so generations
  // accepted in scenario 3 cost the server one submit each and little else while we measure.
  const segmindKey = `sk-bench-${randomBytes(12).toString('hex')}`;
  const fake = await startSimulator({ apiKey: segmindKey, mediaDir: join(work, 'media'), credits: 1e9, queueMs: 600_000, processingMs: 1000 });
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    SEGMIND_API_KEY: segmindKey,
    SEGMIND_BASE_URL: fake.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: join(work, 'data'),
    LOG_LEVEL: 'info',
    NODE_ENV: 'production',
    RATE_LIMIT_PER_MINUTE: '1000000',
    MAX_CONCURRENT_PER_KEY: '1000000',
    POLL_INTERVAL_MS: '60000',
    POLL_MAX_INTERVAL_MS: '60000',
  };
  const serverCommand = ['--import', 'tsx', '--import', './scripts/bench/probe.ts', 'src/server.ts'];
  const server = await spawnChild(serverCommand, env, (line) =>
    line.includes('extendql is listening') ? (JSON.parse(line) as { url: string }).url.replace('localhost', '127.0.0.1') : null,
  );
  const graphqlUrl = `${server.url}/graphql`;
  const baseline = await spawnChild(['--import', 'tsx', 'scripts/bench/baseline-server.ts'], { ...env, PUBLIC_BASE_URL: server.url }, (line) =>
    line.startsWith('{"listening"') ? (JSON.parse(line) as { listening: string }).listening : null,
  );
  const rss = watchRss(server.process.pid);
  const settle = () => waitIdle([server.process.pid, baseline.process.pid]);

  const db = createDb(databaseUrl, { max: 4 });
  const reader = await createApiKey(db, 'bench reader');
  const writers = await Promise.all(Array.from({ length: WRITE_KEYS }, (_, i) => createApiKey(db, `bench writer ${i}`)));
  const oneId = await seed(db, reader.id, server.url);
  console.log(`bench: server ${server.url}, baseline ${baseline.url}, fake Segmind ${fake.url}, ${RUNS} runs of ${DURATION_S} s per side`);

  const rows: Row[] = [];
  const notes: string[] = [];
  let failed = false;

  if (ONLY.has(1)) {
    const query = 'query One($id: ID!) { generation(id: $id) { id status prompt duration quality createdAt } }';
    const body = JSON.stringify({ query, variables: { id: globalId(oneId) } });
    const check = await postJson(graphqlUrl, { query, variables: { id: globalId(oneId) } }, { 'x-api-key': reader.key });
    if (check.errors || !check.data) throw new Error(`scenario 1 query failed: ${JSON.stringify(check)}`);
    console.log('scenario 1: generation(id), 100 connections');
    const c = await compare(
      RUNS,
      WARMUP_S,
      (duration) => load({ url: `${baseline.url}/generation?id=${oneId}`, headers: { 'x-api-key': reader.key }, connections: 100, duration }),
      (duration) => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 100, duration }),
      DURATION_S,
      settle,
    );
    rows.push(...comparisonRows('1. generation(id), 100 connections', c, { rps: 0.6, p99: 2 }));
    notes.push(`Scenario 1 — ${runsText(c)}.`);
    notes.push(await profiled(server, 'Scenario 1', () => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 100, duration: DURATION_S })));
    await settle();
  }

  if (ONLY.has(2)) {
    const query = `query Page($first: Int!) { generations(first: $first) { totalCount edges { node { id source { id } video { url } extensions { totalCount } } } } }`;
    const counts: { first: number; total: number; forQuery: number; sql: string[] }[] = [];
    await settle();
    // One uncounted request first: the first of a process may do one-off work.
    await postJson(graphqlUrl, { query, variables: { first: 5 } }, { 'x-api-key': reader.key });
    for (const first of [5, 50, 100]) {
      let result: Awaited<ReturnType<typeof postJson>> = {};
      const sql = await countSql(server, async () => (result = await postJson(graphqlUrl, { query, variables: { first } }, { 'x-api-key': reader.key })));
      if (result.errors || !result.data) throw new Error(`scenario 2 query failed: ${JSON.stringify(result)}`);
      counts.push({ first, total: sql.length, forQuery: sql.filter((text) => !text.includes('"ApiKey"')).length, sql });
    }
    const constant = counts.every((c) => c.total === counts[0]!.total);
    const withinTarget = counts.every((c) => c.forQuery <= 4);
    const withinTargetWithKey = counts.every((c) => c.total <= 4);
    if (!constant || !withinTarget) failed = true;
    rows.push({
      scenario: '2. generations(first: N) + source, video, extensions { totalCount }',
      figure: 'SQL statements per request (N = 5 / 50 / 100)',
      subject: `${counts.map((c) => c.total).join(' / ')} (${counts.map((c) => c.forQuery).join(' / ')} without the API-key lookup)`,
      baseline: '2 (key lookup + one page statement)',
      ratio: '—',
      target: 'constant in N, ≤ 4',
      verdict: `${constant ? 'constant: met' : 'NOT constant: **missed**'}; ≤ 4: ${withinTarget ? 'met' : '**missed**'} without the key lookup, ${withinTargetWithKey ? 'met' : '**missed**'} with it`,
    });
    notes.push(`Scenario 2 — statements the server sent for first: 100:\n\n${counts[2]!.sql.map((text) => `    ${text}`).join('\n')}`);

    const body = JSON.stringify({ query, variables: { first: 100 } });
    console.log('scenario 2: generations(first: 100), 10 connections');
    const c = await compare(
      RUNS,
      WARMUP_S,
      (duration) => load({ url: `${baseline.url}/page?first=100`, headers: { 'x-api-key': reader.key }, connections: 10, duration }),
      (duration) => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 10, duration }),
      DURATION_S,
      settle,
    );
    rows.push(...comparisonRows('2. generations(first: 100), 10 connections', c, { p50: 2, p99: 2 }));
    notes.push(`Scenario 2 — ${runsText(c)}.`);
    notes.push(await profiled(server, 'Scenario 2', () => load({ url: graphqlUrl, method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': reader.key }, body, connections: 10, duration: DURATION_S })));
    await settle();
  }

  if (ONLY.has(3)) {
    const query = 'mutation Extend($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id status } } } }';
    const variables = { input: { videoUrl: 'https://videos.example/bench.mp4', prompt: 'the camera keeps rolling down the street', quality: 'Q540P' } };
    const body = JSON.stringify({ query, variables });
    const check = (await postJson(graphqlUrl, { query, variables }, { 'x-api-key': writers[0]!.key })) as { data?: { extendVideo?: { __typename: string } } };
    if (check.data?.extendVideo?.__typename !== 'ExtendVideoSuccess') throw new Error(`scenario 3 mutation failed: ${JSON.stringify(check)}`);
    await settle();
    const extendSql = await countSql(server, () => postJson(graphqlUrl, { query, variables }, { 'x-api-key': writers[1]!.key }));
    notes.push(
      `Scenario 3 — statements the server sent during one extendVideo request (${extendSql.length}; pg-boss's own statements are not counted, and a worker step that ran in the same moment would be):\n\n${extendSql.map((text) => `    ${text}`).join('\n')}`,
    );
    const rotate = <T>(items: T[]) => {
      let i = 0;
      return () => items[i++ % items.length]!;
    };
    for (const [label, keys] of [[`${WRITE_KEYS} API keys`, writers], ['one API key', writers.slice(0, 1)]] as const) {
      const nextKey = rotate(keys);
      const nextKeyId = rotate(keys);
      const subjectRun = (duration: number) =>
        load({
          url: server.url,
          connections: 50,
          duration,
          requests: [{ method: 'POST', path: '/graphql', headers: { 'content-type': 'application/json' }, body, setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-api-key': nextKey().key } }) }],
        });
      const before = await db.generation.count({ where: { apiKeyId: { in: writers.map((w) => w.id) } } });
      console.log(`scenario 3: extendVideo, 50 connections, ${label}`);
      const c = await compare(
        RUNS,
        WARMUP_S,
        (duration) =>
          load({
            url: baseline.url,
            connections: 50,
            duration,
            requests: [{ method: 'POST', path: '/extend', headers: { 'content-type': 'application/json' }, body, setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-key-id': nextKeyId().id } }) }],
          }),
        subjectRun,
        DURATION_S,
        settle,
      );
      const after = await db.generation.count({ where: { apiKeyId: { in: writers.map((w) => w.id) } } });
      const inserted = after - before;
      const okResponses = c.subject.reduce((n, r) => n + r.ok, 0) + c.baseline.reduce((n, r) => n + r.ok, 0);
      rows.push(...comparisonRows(`3. extendVideo accepted, 50 connections, ${label}`, c, { rps: 0.3, p99AbsMs: 50 }));
      notes.push(
        `Scenario 3 (${label}) — ${runsText(c)}. Rows for the writer keys grew by ${inserted}; 2xx responses over the measured runs of both sides: ${okResponses} (warm-ups insert rows too, so rows ≥ responses is expected).`,
      );
      notes.push(await profiled(server, `Scenario 3 (${label})`, () => subjectRun(DURATION_S)));
      await settle();
    }
  }

  const peakRss = rss.stop();
  await db.$disconnect();
  await baseline.stop();
  await server.stop();
  await fake.close();

  let realtimeSetup = '';
  if (ONLY.has(6) || ONLY.has(7)) {
    // A second server with the default polling settings, on its own database (so the first
    // server's job queue stays out of it), against a fake that takes 5 s per job.
    const queueMs = 500;
    const processingMs = 4500;
    const fakeKey = `sk-bench-${randomBytes(12).toString('hex')}`;
    const fake2 = await startSimulator({ apiKey: fakeKey, mediaDir: join(work, 'media'), credits: 1e9, queueMs, processingMs });
    const realtimeDbUrl = await createDatabase();
    const env2 = { ...env, DATABASE_URL: realtimeDbUrl, SEGMIND_API_KEY: fakeKey, SEGMIND_BASE_URL: fake2.url, DATA_DIR: join(work, 'data2') } as NodeJS.ProcessEnv;
    delete env2.POLL_INTERVAL_MS;
    delete env2.POLL_MAX_INTERVAL_MS;
    const server2 = await spawnChild(serverCommand, env2, (line) =>
      line.includes('extendql is listening') ? (JSON.parse(line) as { url: string }).url.replace('localhost', '127.0.0.1') : null,
    );
    const db2 = createDb(realtimeDbUrl, { max: 2 });
    const rt: Realtime = { graphqlUrl: `${server2.url}/graphql`, key: (await createApiKey(db2, 'bench realtime')).key, fake: fake2, fakeKey, jobMs: queueMs + processingMs };
    realtimeSetup = `Scenarios 6 and 7 use a second server (same command, default \`POLL_INTERVAL_MS\`=1000, \`POLL_BACKOFF\`=1.5, \`POLL_MAX_INTERVAL_MS\`=10000) on its own database, against a fake that keeps each job QUEUED ${queueMs} ms and PROCESSING ${processingMs} ms; the first server and the baseline server are stopped by then.`;
    console.log('scenarios 6/7: warm-up generation');
    await endToEnd(rt, 'warm-up');
    await endToEndDirect(rt, 'warm-up');

    if (ONLY.has(6)) {
      const PER_RUN = 10;
      console.log(`scenario 6: ${RUNS} runs of ${PER_RUN} generations`);
      const timings: CompletionTiming[][] = [];
      for (let i = 0; i < RUNS; i++) timings.push(await completionToSubscriber(rt, PER_RUN, `s6 run ${i}`));
      const runs = timings.map((run) => run.map((t) => t.latency));
      const p50 = median(runs.map((r) => percentile(r, 0.5)));
      const p90 = median(runs.map((r) => percentile(r, 0.9)));
      const all = timings.flat();
      const firstPoll = median(all.map((t) => t.firstPollAfter));
      const downloadAt = median(all.map((t) => t.download));
      rows.push({
        scenario: '6. fake marks COMPLETED → subscriber gets SUCCEEDED, default polling',
        figure: `p50 (p90) over ${PER_RUN} generations, median of ${RUNS} runs`,
        subject: `${fmt(p50, 0)} ms (${fmt(p90, 0)} ms)`,
        baseline: '—',
        ratio: '—',
        target: 'p50 ≤ 1500 ms',
        verdict: p50 <= 1500 ? 'met' : '**missed**',
      });
      notes.push(
        `Scenario 6 — each run starts ${PER_RUN} generations 0–2 s apart, each followed by a \`generationUpdated\` subscriber over SSE; latency is the time SUCCEEDED reached the subscriber minus the time the fake marked the job COMPLETED (its creation time + ${queueMs + processingMs} ms). SUCCEEDED includes copying the MP4 into storage. Runs (ms, sorted): ${runs.map((r) => r.map((x) => x.toFixed(0)).join(' ')).join(' | ')}. Where the time goes (medians over all ${all.length} generations, from the fake's request log): the server's first status/result request after COMPLETED came ${fmt(firstPoll, 0)} ms after it, its download of the MP4 began ${fmt(downloadAt, 0)} ms after it, and SUCCEEDED reached the subscriber ${fmt(median(all.map((t) => t.latency)), 0)} ms after it. (The worker polls 1 s after submitting, then after waits of POLL_INTERVAL_MS × 1.5^pollCount, each step picked up by pg-boss polling every 0.5 s: see src/generations/worker.ts and src/jobs/queue.ts.)`,
      );
    }
    if (ONLY.has(7)) {
      console.log(`scenario 7: ${RUNS} end-to-end runs per side`);
      const subject: number[] = [];
      const direct: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        direct.push(await endToEndDirect(rt, `s7 ${i}`));
        subject.push(await endToEnd(rt, `s7 ${i}`));
      }
      const s7 = median(subject);
      const b7 = median(direct);
      rows.push({
        scenario: '7. end to end: submit, wait, download (fake takes 5 s)',
        figure: `wall time, median of ${RUNS}`,
        subject: `${fmt(s7 / 1000, 2)} s`,
        baseline: `${fmt(b7 / 1000, 2)} s`,
        ratio: `${fmt(s7 / b7, 2)}×`,
        target: '≤ 1.2× baseline',
        verdict: s7 <= 1.2 * b7 ? 'met' : '**missed**',
      });
      notes.push(
        `Scenario 7 — subject: \`extendVideo\`, a \`generationUpdated\` subscriber until SUCCEEDED, then GET of the video from extendql; baseline: POST to the fake's v2 API, GET status every 1 s until COMPLETED, GET the result, download the output. One generation at a time, alternating. Runs (s): extendql ${subject.map((x) => (x / 1000).toFixed(2)).join(', ')}; direct ${direct.map((x) => (x / 1000).toFixed(2)).join(', ')}.`,
      );
    }
    await db2.$disconnect();
    await server2.stop();
    await fake2.close();
  }

  const unmeasured: Record<number, string> = {
    4: '4. 2,000 generations in flight, fake takes 20 s each',
    5: '5. copy a 200 MB MP4 output into storage',
    6: '6. fake marks COMPLETED → subscriber gets SUCCEEDED',
    7: '7. end to end: submit, wait, download',
  };
  for (const n of [4, 5, 6, 7].filter((n) => !ONLY.has(n))) {
    rows.push({ scenario: unmeasured[n]!, figure: 'not yet measured', subject: '—', baseline: '—', ratio: '—', target: '—', verdict: 'not yet measured' });
  }
  const wallS = (Date.now() - wallStart) / 1000;
  const command = `npm run bench -- --runs ${RUNS} --duration ${DURATION_S} --only ${[...ONLY].join(',')}`;
  const report = `# Benchmarks

Latest run, reproduce with:

    ${command}

Machine: nproc ${availableParallelism()} (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${process.platform}. Run at ${new Date().toISOString()}, wall time ${fmt(wallS, 0)} s.

Set-up: the real server runs as a child process (\`node ${serverCommand.join(' ')}\`, \`NODE_ENV=production\`, per-key limits raised to 1,000,000) on real PostgreSQL (${process.env.DATABASE_URL ? 'DATABASE_URL' : 'an embedded cluster started by the bench'}) against a fake Segmind on 127.0.0.1. The baselines run in another child process (\`scripts/bench/baseline-server.ts\`, a plain \`node:http\` server with the same Prisma client and pool size 20, and a \`pg\` pool of 20). The load generator is autocannon, in the bench process, on the same ${availableParallelism()} cores as both servers and PostgreSQL: figures are relative, and the ratio to the baseline measured in the same run is what the targets are about. Each figure is the **median of ${RUNS} runs of ${DURATION_S} s**, baseline and subject alternating, after a ${WARMUP_S} s warm-up of each. Peak RSS of the server under test during scenarios 1–3: ${fmt(peakRss, 0)} MB.

Data: one reader key owning ${SEEDED} finished generations in chains of three (each extending the previous), three in four with a stored video; ${WRITE_KEYS} writer keys for scenario 3.

| scenario | figure | extendql | baseline | ratio | target | verdict |
| --- | --- | --- | --- | --- | --- | --- |
${rows.map((r) => `| ${r.scenario} | ${r.figure} | ${r.subject} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.verdict} |`).join('\n')}

## What each scenario does

1. \`query { generation(id) { id status prompt duration quality createdAt } }\` over HTTP POST with 100 connections. Baseline: \`GET /generation?id=\` doing the same API-key lookup (\`authenticate\`) and \`prisma.generation.findFirst\` and answering JSON.
2. \`generations(first: N) { totalCount edges { node { id source { id } video { url } extensions { totalCount } } } }\`. SQL statements are counted in the server process by wrapping \`pg.Client.prototype.query\` (preloaded \`scripts/bench/probe.ts\`; pg-boss statements excluded), one request per N. Latency: first: 100 with 10 connections. Baseline: the API-key lookup and one hand-written SQL statement (LEFT JOIN on Video, correlated counts) through \`pg\`.
3. \`extendVideo\` (validation, per-key advisory lock, limit checks, INSERT and pg-boss enqueue in one transaction), 50 connections, keys rotated per request. Baseline: one \`INSERT\` of the same row through \`pg\` (no key lookup, no transaction). The fake keeps jobs queued for 10 minutes and \`POLL_INTERVAL_MS=60000\`, so in the background the worker only submits each accepted generation once to the fake.
6. and 7. are described in the notes below. ${realtimeSetup}

Scenarios 4 (2,000 generations in flight, RSS and event-loop delay) and 5 (copying a 200 MB MP4) are not yet measured: no numbers exist for them.

## Notes

${notes.join('\n\n')}
`;
  await writeFile(new URL('../BENCHMARKS.md', import.meta.url), report);
  console.log(rows.map((r) => `${r.scenario} | ${r.figure}: ${r.subject} vs ${r.baseline} (${r.ratio}) target ${r.target}: ${r.verdict}`).join('\n'));
  console.log(`wrote BENCHMARKS.md in ${fmt(wallS, 0)} s`);

  await scratch.close();
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
