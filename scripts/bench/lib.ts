/** Helpers of `npm run bench`: child processes, load runs and medians. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import autocannon from 'autocannon';

export interface Child {
  process: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` with `env` and resolves once a stdout line matches `ready`, whose result is
 * the URL the child listens on. Output after that is drained and dropped.
 */
export async function spawnChild(args: string[], env: NodeJS.ProcessEnv, ready: (line: string) => string | null): Promise<Child> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const found = ready(line);
        if (found) {
          child.stdout!.off('data', onData);
          child.stdout!.resume();
          resolve(found);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return {
    process: child,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
      }),
  };
}

/** Resident set size of a process in MB, from /proc (0 when unreadable). */
export async function rssMb(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples a process's RSS until stopped; resolves with the peak in MB. */
export function watchRss(pid: number | undefined, everyMs = 200) {
  let peak = 0;
  const timer = setInterval(() => void rssMb(pid).then((mb) => (peak = Math.max(peak, mb))), everyMs);
  return { stop: () => (clearInterval(timer), peak) };
}

export interface RunFigures {
  /** Mean requests per second over the run. */
  rps: number;
  p50: number;
  p99: number;
  /** Responses with a 2xx status. */
  ok: number;
  /** Connection errors, timeouts and non-2xx responses. */
  bad: number;
  /** Responses of any kind. */
  total: number;
  /** CPU time (user + system) of the serving process per response, in ms, when it is probed. */
  cpuMsPerRequest?: number;
  /** Time inside the serving process per request (scripts/bench/probe.ts), when it is probed. */
  servedP50?: number;
  servedP99?: number;
}

/** Sends a message to a child's probe (scripts/bench/probe.ts) and waits for its answer. */
export const ask = <T>(child: Child, message: object) =>
  new Promise<T>((resolve) => {
    child.process.once('message', (answer) => resolve(answer as T));
    child.process.send(message);
  });

export async function load(options: autocannon.Options): Promise<RunFigures> {
  const result = await autocannon(options);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    bad: result.errors + result.timeouts + result.non2xx,
    total: result.requests.total,
  };
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export interface Comparison {
  subject: RunFigures[];
  baseline: RunFigures[];
}

/** Runs baseline and subject alternately, `runs` times each, after one short warm-up of each. */
export async function compare(
  runs: number,
  warmupS: number,
  baseline: (duration: number) => Promise<RunFigures>,
  subject: (duration: number) => Promise<RunFigures>,
  durationS: number,
  settle: () => Promise<void>,
  probed: { subject?: Child; baseline?: Child } = {},
): Promise<Comparison> {
  const after = async <T>(result: Promise<T>) => {
    const value = await result;
    await settle();
    return value;
  };
  // CPU per response is steadier than throughput on a shared machine, and says where a ratio comes
  // from; the time inside the server says which part of the latency is the server's.
  const measured = (run: (duration: number) => Promise<RunFigures>, child: Child | undefined) => async (duration: number): Promise<RunFigures> => {
    if (!child) return run(duration);
    await ask(child, { served: 'start' });
    const before = await cpuTicks(child.process.pid);
    const figures = await run(duration);
    const ticks = (await cpuTicks(child.process.pid)) - before;
    const served = await ask<{ p50: number; p99: number }>(child, { served: 'stop' });
    return { ...figures, cpuMsPerRequest: figures.total ? (ticks * 10) / figures.total : Number.NaN, servedP50: served.p50, servedP99: served.p99 };
  };
  baseline = measured(baseline, probed.baseline);
  subject = measured(subject, probed.subject);
  await settle();
  await after(baseline(warmupS));
  await after(subject(warmupS));
  const out: Comparison = { subject: [], baseline: [] };
  for (let i = 0; i < runs; i++) {
    out.baseline.push(await after(baseline(durationS)));
    out.subject.push(await after(subject(durationS)));
  }
  return out;
}

export const medianOf = (runs: RunFigures[], key: keyof RunFigures) => median(runs.map((run) => run[key] ?? Number.NaN));

async function cpuTicks(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
}

/**
 * Waits until the processes are idle (under 10% of a core over 250 ms), so that requests still
 * queued from one run don't land in the next one. Gives up after `maxMs`.
 */
export async function waitIdle(pids: (number | undefined)[], maxMs = 30_000) {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const before = await Promise.all(pids.map(cpuTicks));
    await new Promise((resolve) => setTimeout(resolve, 250));
    const after = await Promise.all(pids.map(cpuTicks));
    // Linux counts 100 ticks per second: 250 ms at 10% of a core is 2.5 ticks.
    if (after.every((ticks, i) => ticks - before[i]! < 3)) return;
  }
}
