/**
 * `npm run soak`: 500+ concurrent extendVideo calls against a slow fake Segmind that injects
 * faults into about 10% of its answers. Reports accepted / succeeded / failed (by reason) /
 * lost, duplicate billable submissions, mutation latency and the server's peak RSS, and writes
 * them to RELIABILITY.md. Everything runs on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApiKey } from '../src/auth/api-keys.js';
import { createDb } from '../src/db/client.js';
import { scratchPostgres } from './lib/scratch-postgres.js';
import type { Fault, SimRoute } from '../src/upstream/simulator/index.js';
import { startSimulator } from '../src/upstream/simulator/index.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '500' }, keys: { type: 'string', default: '25' }, 'fault-rate': { type: 'string', default: '0.1' } },
});
const COUNT = Number(values.count);
/** Calls are spread over this many API keys, as from many tenants: one key's requests are admitted one at a time. */
const KEYS = Number(values.keys);
const FAULT_RATE = Number(values['fault-rate']);
const DEADLINE_MS = 180_000;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main() {
  const scratch = await scratchPostgres('soak');
  const work = scratch.work;
  const databaseUrl = await scratch.createDatabase();

  const segmindKey = `sk-soak-${randomBytes(12).toString('hex')}`;
  const fake = await startSimulator({ apiKey: segmindKey, mediaDir: join(work, 'media'), credits: 100_000, queueMs: 3000, processingMs: 7000 });

  // Faults on about FAULT_RATE of the fake's answers, spread over the run.
  const faultKinds: [SimRoute, Fault][] = [
    ['submit', { kind: 'http', status: 429, headers: { 'x-rate-limit-reset-at-utc': '' } }],
    ['submit', { kind: 'http', status: 500 }],
    ['submit', { kind: 'http', status: 502 }],
    ['status', { kind: 'http', status: 504 }],
    ['status', { kind: 'http', status: 500 }],
    ['status', { kind: 'flap' }],
    ['result', { kind: 'http', status: 502 }],
    ['output', { kind: 'truncate' }],
    ['output', { kind: 'http', status: 500 }],
  ];
  let seen = 0;
  let injected = 0;
  const injector = setInterval(() => {
    const arrived = fake.requests.length - seen;
    seen = fake.requests.length;
    for (let i = 0; i < arrived; i++) {
      if (Math.random() >= FAULT_RATE) continue;
      const [route, fault] = faultKinds[Math.floor(Math.random() * faultKinds.length)]!;
      const withReset = fault.kind === 'http' && fault.status === 429 ? { ...fault, headers: { 'x-rate-limit-reset-at-utc': new Date(Date.now() + 1000).toISOString() } } : fault;
      fake.faults.inject(route, withReset);
      injected++;
    }
  }, 100);

  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    SEGMIND_API_KEY: segmindKey,
    SEGMIND_BASE_URL: fake.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: join(work, 'data'),
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    RATE_LIMIT_PER_MINUTE: '100000',
    MAX_CONCURRENT_PER_KEY: '100000',
    UPSTREAM_CIRCUIT_THRESHOLD: '50',
    UPSTREAM_CIRCUIT_COOLDOWN_MS: '2000',
    GENERATION_DEADLINE_MS: String(DEADLINE_MS),
    WORKER_CONCURRENCY: '16',
  };
  const server = spawn(process.execPath, ['--max-old-space-size=192', '--import', 'tsx', 'src/server.ts'], { env: { ...env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    server.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        if (line.includes('extendql is listening')) resolve((JSON.parse(line) as { url: string }).url.replace('localhost', '127.0.0.1'));
      }
      buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
    });
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  server.stdout.resume();
  let peakRssKb = 0;
  const rssTimer = setInterval(async () => {
    const status = await readFile(`/proc/${server.pid}/status`, 'utf8').catch(() => '');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peakRssKb = Math.max(peakRssKb, rss);
  }, 200);

  const db = createDb(databaseUrl, { max: 4 });
  const keys = await Promise.all(Array.from({ length: KEYS }, (_, i) => createApiKey(db, `soak ${i}`).then((created) => created.key)));

  console.log(`soak: ${COUNT} concurrent extendVideo calls from ${KEYS} keys against ${url} (fake Segmind ${fake.url}, ${FAULT_RATE * 100}% faults)`);
  const started = Date.now();
  const latencies: number[] = [];
  const rejected: Record<string, number> = {};
  const accepted: string[] = [];
  await Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const t0 = performance.now();
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': keys[i % KEYS]! },
        body: JSON.stringify({
          query: 'mutation($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id } } } }',
          variables: { input: { videoUrl: 'https://videos.example/soak.mp4', prompt: `soak #${i}`, quality: (['Q360P', 'Q540P', 'Q720P'] as const)[i % 3] } },
        }),
      });
      latencies.push(performance.now() - t0);
      const body = (await response.json()) as { data?: { extendVideo: { __typename: string } }; errors?: unknown[] };
      const kind = body.data?.extendVideo.__typename ?? `HTTP ${response.status}`;
      if (kind === 'ExtendVideoSuccess') accepted.push(`soak #${i}`);
      else rejected[kind] = (rejected[kind] ?? 0) + 1;
    }),
  );

  // Wait for every accepted generation to reach a terminal state (or the deadline to pass).
  let rows: { status: string; errorCode: string | null; prompt: string }[] = [];
  while (Date.now() - started < DEADLINE_MS + 30_000) {
    rows = await db.generation.findMany({ select: { status: true, errorCode: true, prompt: true } });
    if (rows.length === accepted.length && rows.every((row) => ['SUCCEEDED', 'FAILED', 'CANCELED'].includes(row.status))) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const elapsedS = (Date.now() - started) / 1000;
  clearInterval(injector);
  clearInterval(rssTimer);

  const succeeded = rows.filter((row) => row.status === 'SUCCEEDED').length;
  const failedBy: Record<string, number> = {};
  for (const row of rows.filter((r) => r.status === 'FAILED')) failedBy[row.errorCode ?? 'UNKNOWN'] = (failedBy[row.errorCode ?? 'UNKNOWN'] ?? 0) + 1;
  const recorded = new Set(rows.map((row) => row.prompt));
  const lost = accepted.filter((prompt) => !recorded.has(prompt)).length + rows.filter((row) => !['SUCCEEDED', 'FAILED', 'CANCELED'].includes(row.status)).length;
  const billable = new Map<string, number>();
  for (const job of fake.jobs()) billable.set(job.params.prompt, (billable.get(job.params.prompt) ?? 0) + 1);
  const duplicates = [...billable.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
  const sorted = [...latencies].sort((a, b) => a - b);
  const failedTotal = Object.values(failedBy).reduce((a, b) => a + b, 0);

  const command = `npm run soak -- --count ${COUNT} --keys ${KEYS} --fault-rate ${FAULT_RATE}`;
  const figures = [
    ['extendVideo calls', COUNT],
    ['accepted', accepted.length],
    ['rejected at the API', Object.keys(rejected).length ? JSON.stringify(rejected) : 0],
    ['succeeded', succeeded],
    ['failed (truthfully, by reason)', failedTotal ? `${failedTotal} ${JSON.stringify(failedBy)}` : 0],
    ['lost', lost],
    ['duplicate billable submissions', duplicates],
    ['faults injected by the fake', `${injected} of ${fake.requests.length} answers`],
    ['mutation latency p50 / p99', `${percentile(sorted, 50).toFixed(1)} ms / ${percentile(sorted, 99).toFixed(1)} ms`],
    ['server peak RSS', `${(peakRssKb / 1024).toFixed(0)} MB`],
    ['time until all terminal', `${elapsedS.toFixed(1)} s`],
  ] as const;
  for (const [name, value] of figures) console.log(`${name}: ${value}`);

  const report = `# Reliability

Latest soak run. Reproduce with:

    ${command}

It starts the real server as a child process on real PostgreSQL (\`DATABASE_URL\`, or an embedded
cluster), points it at a fake Segmind on 127.0.0.1 that keeps jobs QUEUED for 3 s and PROCESSING for
7 s and injects faults into about ${FAULT_RATE * 100}% of its answers (429 with a reset time, 500, 502,
504, status flapping, truncated and failing downloads), fires ${COUNT} concurrent \`extendVideo\`
mutations spread over ${KEYS} API keys, and waits until every generation is terminal.

Machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}. Run at ${new Date().toISOString()}.

| figure | value |
| --- | --- |
${figures.map(([name, value]) => `| ${name} | ${value} |`).join('\n')}

"Lost" counts accepted calls without a terminal generation; "duplicate billable submissions" counts
jobs the fake accepted beyond the first for one generation.
Injected faults wait in per-route queues of the fake and hit the next requests on that route, so
they arrive in clusters; transient faults only delay a generation (they are retried until
\`GENERATION_DEADLINE_MS\`), so one fails for them only if they last until its deadline. The load
generator, the fake (which also encodes the MP4s) and the server share the machine's cores, so the
mutation latency here is a figure under heavy contention, not a benchmark.
`;
  await writeFile(new URL('../RELIABILITY.md', import.meta.url), report);
  console.log('wrote RELIABILITY.md');

  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await db.$disconnect();
  await fake.close();
  await scratch.close();
  if (lost > 0 || duplicates > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
