/**
 * Scenario 8 of `npm run bench`: the time from `npm start` to the first served /health, as a
 * newcomer runs it (embedded PostgreSQL, the simulator, `NODE_ENV=production`), on a data
 * directory that an earlier start already initialised. Baseline: a bare `node:http` server
 * answering /health, spawned and polled the same way, so the figure is relative to Node's own start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib.ts';
import { fmt, verdict, type Findings } from './report.ts';
import type { Servers } from './servers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** `npm start` (package.json), without npm itself. */
export const START_COMMAND = ['--import', './src/require-node.mjs', 'src/server.ts'];
const BARE_SERVER = `require('node:http').createServer((req, res) => res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' }).end('{"message":"alive"}')).listen(Number(process.env.PORT), process.env.HOST)`;
const TARGET_MS = 2000;
const POLL_MS = 10;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `url` every 10 ms until it answers 200; ms since `t0` (performance.now()). */
async function firstOk(url: string, t0: number, child: ChildProcess, timeoutMs = 120_000): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the process exited (${child.exitCode}) before ${url} answered 200`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (response) => (await response.arrayBuffer(), response.status === 200),
      () => false,
    );
    if (ok) return performance.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  });
}

export interface TimedStart {
  /** Spawn to the first 200 on /health, ms. */
  healthMs: number;
  /** Spawn to the first 200 on /ready (the server only), ms. */
  readyMs?: number;
  /** Spawn to each log line of interest (the server only), by message, ms. */
  lines: Record<string, number>;
}

const MILESTONES = ['embedded PostgreSQL started', 'extendql is listening', 'job engine started'];

/** One start: spawn `node <args>` with `env` on `port`, time /health (and /ready), then stop it. */
export async function timedStart(args: string[], env: NodeJS.ProcessEnv, port: number, options: { ready?: boolean; whileUp?: (url: string) => Promise<void> } = {}): Promise<TimedStart> {
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, number> = {};
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    for (const line of complete) {
      const logged = /^\{/.test(line) ? (JSON.parse(line) as { msg?: string; time?: number }) : {};
      if (logged.msg && MILESTONES.includes(logged.msg) && logged.time) lines[logged.msg] ??= logged.time - spawnedAt;
    }
  });
  try {
    const origin = `http://127.0.0.1:${port}`;
    const healthMs = await firstOk(`${origin}/health`, t0, child);
    const readyMs = options.ready ? await firstOk(`${origin}/ready`, t0, child) : undefined;
    await options.whileUp?.(origin);
    return { healthMs, readyMs, lines };
  } finally {
    await stopped(child);
  }
}

/** Scenario 8: `STARTS` starts of each side, alternating, after one unmeasured start of each. */
export async function scenario8(servers: Servers, findings: Findings): Promise<void> {
  const starts = Math.max(5, 2 * servers.options.runs + 1);
  const dataDir = join(servers.work, 'data8');
  // What a newcomer's shell has, and no more: no DATABASE_URL, no SEGMIND_API_KEY.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...(process.env.TMPDIR && { TMPDIR: process.env.TMPDIR }), NODE_ENV: 'production', DATA_DIR: dataDir, HOST: '127.0.0.1' };
  console.log('scenario 8: first start (initialises the data directory, makes the sample clip; not measured)');
  const first = await timedStart(START_COMMAND, env, await freePort(), {
    ready: true,
    // The sample clip is made in the background of a first start: let it finish, as a newcomer's first run would.
    whileUp: async (origin) => void (await (await fetch(`${origin}/samples/beach.mp4`)).arrayBuffer()),
  });
  await timedStart(['-e', BARE_SERVER], env, await freePort());
  console.log(`scenario 8: ${starts} starts per side`);
  const subject: TimedStart[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < starts; i++) {
    baseline.push((await timedStart(['-e', BARE_SERVER], env, await freePort())).healthMs);
    subject.push(await timedStart(START_COMMAND, env, await freePort(), { ready: true }));
  }
  reportStarts(findings, { first, subject, baseline });
}

/** Scenario 8's row and note. */
function reportStarts(findings: Findings, r: { first: TimedStart; subject: TimedStart[]; baseline: number[] }): void {
  const s = median(r.subject.map((run) => run.healthMs));
  const b = median(r.baseline);
  findings.quoted.startMs = s;
  findings.quoted.baselineStartMs = b;
  findings.rows.push({
    scenario: '8. `npm start` to a served /health, existing data dir',
    figure: `time, median of ${r.subject.length}`,
    subject: `${fmt(s, 0)} ms`,
    baseline: `${fmt(b, 0)} ms (bare node:http)`,
    ratio: `${fmt(s / b, 2)}×`,
    target: `≤ ${TARGET_MS} ms`,
    verdict: verdict(s <= TARGET_MS),
  });
  const line = (msg: string) => fmt(median(r.subject.map((run) => run.lines[msg] ?? Number.NaN)), 0);
  findings.notes.push(
    `Scenario 8 — \`node ${START_COMMAND.join(' ')}\` (what \`npm start\` runs) with only \`NODE_ENV=production\`, \`DATA_DIR\`, \`HOST\` and \`PORT\` set: the embedded PostgreSQL and the Segmind simulator, on a data directory that a first start (not measured; ${fmt(r.first.healthMs, 0)} ms to /health, with initdb) initialised and stopped. ` +
      `Time from spawn to the first HTTP 200 on /health, polled every ${POLL_MS} ms; each start is stopped with SIGTERM before the next. Baseline: \`node -e\` of a bare \`node:http\` server answering /health, spawned and polled the same way, alternating with the server. ` +
      `Runs (ms): extendql ${r.subject.map((run) => fmt(run.healthMs, 0)).join(', ')}; bare node:http ${r.baseline.map((ms) => fmt(ms, 0)).join(', ')}. ` +
      `Medians from spawn, from the server's log: embedded PostgreSQL started ${line('embedded PostgreSQL started')} ms, listening ${line('extendql is listening')} ms, job engine started ${line('job engine started')} ms; /health 200 ${fmt(median(r.subject.map((run) => run.healthMs)), 0)} ms; /ready 200 ${fmt(median(r.subject.map((run) => run.readyMs ?? Number.NaN)), 0)} ms.`,
  );
}
