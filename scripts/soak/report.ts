import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';

export interface Figures {
  count: number;
  accepted: number;
  rejected: Record<string, number>;
  retried: Record<string, number>;
  succeeded: number;
  /** Failed with a code that names a passing condition, by code. */
  transient: Record<string, number>;
  /** Failed for a reason that trying again cannot change, by code. */
  permanent: Record<string, number>;
  lost: number;
  duplicates: number;
  crashes: Record<string, number>;
  injected: string;
  latenciesMs: number[];
  peakRssMb: Record<string, number>;
  elapsedS: number;
  chaosLog: string[];
  hostile: Record<string, string>;
  followers: { total: number; sawFinal: number; reopened: number } | null;
}

const FILE = new URL('../../RELIABILITY.md', import.meta.url);

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const counted = (counts: Record<string, number>) => (total(counts) ? `${total(counts)} ${JSON.stringify(counts)}` : '0');
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

function table(f: Figures): string {
  const rows: [string, string | number][] = [
    ['extendVideo calls', f.count],
    ['accepted', f.accepted],
    ['rejected at the API', counted(f.rejected)],
    ['answers that asked the client to retry (then retried with the same idempotency key)', counted(f.retried)],
    ['succeeded', f.succeeded],
    ['lost', f.lost],
    ['duplicate billable submissions', f.duplicates],
    ['process crashes', Object.entries(f.crashes).map(([name, n]) => `${n} (${name})`).join(', ')],
    ['failed for transient reasons', counted(f.transient)],
    ['failed for permanent reasons, by code', counted(f.permanent)],
    ['faults injected by the fake', f.injected],
    ['mutation latency p50 / p99 (until accepted, retries included)', `${percentile(f.latenciesMs, 50).toFixed(1)} ms / ${percentile(f.latenciesMs, 99).toFixed(1)} ms`],
    ['peak RSS', Object.entries(f.peakRssMb).map(([name, mb]) => `${mb} MB (${name})`).join(', ')],
    ['time until all terminal', `${f.elapsedS.toFixed(1)} s`],
  ];
  if (f.followers) {
    rows.push([
      'subscribers on the second instance that saw their generation end',
      `${f.followers.sawFinal} of ${f.followers.total} (streams opened again after a break: ${f.followers.reopened})`,
    ]);
  }
  return ['| figure | value |', '| --- | --- |', ...rows.map(([name, value]) => `| ${name} | ${value} |`)].join('\n');
}

function section(kind: 'plain' | 'chaos', command: string, f: Figures): string {
  const title = kind === 'chaos' ? '## Chaos soak' : '## Plain soak';
  const machine = `Machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}. Run at ${new Date().toISOString()}.`;
  const parts = [title, '', `    ${command}`, '', machine, '', table(f)];
  if (kind === 'chaos') {
    parts.push('', 'What happened to the service during the run (seconds after the first call):', '', ...f.chaosLog.map((line) => `- ${line}`));
    parts.push('', 'The hostile burst, and how each request was answered:', '', '| request | answer |', '| --- | --- |');
    parts.push(...Object.entries(f.hostile).map(([name, answer]) => `| ${name} | ${answer} |`));
  }
  return `<!-- soak:${kind} -->\n${parts.join('\n')}\n<!-- /soak:${kind} -->`;
}

const INTRO = `# Reliability

extendql is meant to lose nothing: no accepted generation without an end, no job billed twice
upstream, no crash, whatever PostgreSQL, Redis, the disk or a client does. Two soak runs check it.

Both start the real server as a child process (as \`npm start\` runs it, with Node's default heap
policy) on real PostgreSQL, point it at a fake Segmind on 127.0.0.1 that keeps jobs QUEUED for 3 s
and PROCESSING for 7 s, injects faults into about 10% of its answers (429 with a reset time, 500,
502, 504, status flapping, truncated and failing downloads) and fails about 1 job in 500 for good,
fire the extendVideo calls over many API keys (at once; with chaos, spread over the first 30 s so
that some meet the first database outage), and wait until every generation is terminal.
The client retries an answer that asks it to (503 with Retry-After, a rate limit, a broken
connection) with the same idempotency key, as a careful client does.

The chaos run also, while the load runs: kills PostgreSQL with SIGKILL twice and starts it again;
kills Redis once, while a second, API-only instance follows 50 of the generations over Server-Sent
Events through Redis; fills the video storage (a tmpfs) once; and sends a burst of hostile requests
from a second API key. A process that exits unasked counts as a crash (and is started again).

"Lost" counts accepted calls without a terminal generation. "Duplicate billable submissions" counts
jobs the fake accepted beyond the first for one generation. "Transient reasons" are codes that name
a passing condition (rate limits, upstream 5xx and timeouts, broken downloads, a full disk, a
deadline): a generation that fails with one was given up on too early. The load generator, the fake
(which also encodes the MP4s), PostgreSQL and the servers share the machine's cores, so latencies
here are figures under heavy contention, not benchmarks (those are in BENCHMARKS.md).
`;

/** Replaces this kind's section of RELIABILITY.md, keeping the other kind's figures beside it. */
export async function writeReport(kind: 'plain' | 'chaos', command: string, figures: Figures): Promise<void> {
  const current = await readFile(FILE, 'utf8').catch(() => '');
  const other = kind === 'chaos' ? 'plain' : 'chaos';
  const keep = new RegExp(`<!-- soak:${other} -->[\\s\\S]*?<!-- /soak:${other} -->`).exec(current)?.[0] ?? `<!-- soak:${other} -->\n(not run yet)\n<!-- /soak:${other} -->`;
  const mine = section(kind, command, figures);
  const [plain, chaos] = kind === 'plain' ? [mine, keep] : [keep, mine];
  await writeFile(FILE, `${INTRO}\n${chaos}\n\n${plain}\n`);
  for (const line of table(figures).split('\n').slice(2)) console.log(line);
  console.log('wrote RELIABILITY.md');
}
