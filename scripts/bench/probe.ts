/**
 * Preloaded into the server under test (`node --import ./scripts/bench/probe.ts
 * src/server.ts`): wraps `pg.Client.prototype.query`, the driver call behind `@prisma/adapter-pg`,
 * so the bench can count the SQL statements the real server sends. pg-boss shares the driver; its
 * statements (all in the `pgboss` schema) are not counted. The parent asks over the IPC channel:
 * `{ sql: 'start' }` clears and starts recording, `{ sql: 'stop' }` answers with what was recorded.
 */
import { writeFile } from 'node:fs/promises';
import { Server } from 'node:http';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';

let recording = false;
const seen: string[] = [];
const original = pg.Client.prototype.query;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's overloads can't be restated generically
(pg.Client.prototype as any).query = function (this: pg.Client, ...args: unknown[]) {
  if (recording) {
    const first = args[0];
    const text = typeof first === 'string' ? first : first && typeof first === 'object' && 'text' in first ? String((first as { text: unknown }).text) : '';
    if (!/pgboss/i.test(text)) seen.push(text.replace(/\s+/g, ' ').slice(0, 160));
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return (original as any).apply(this, args);
};

process.on('message', (message: { sql?: 'start' | 'stop' }) => {
  if (message.sql === 'start') {
    seen.length = 0;
    recording = true;
    process.send?.({ sql: 'started' });
  } else if (message.sql === 'stop') {
    recording = false;
    process.send?.({ sql: 'stopped', statements: [...seen] });
  }
});

/**
 * `{ profile: 'start' }` / `{ profile: 'stop' }`: a CPU profile of this process (node:inspector),
 * answered as self time in ms per place (package, or file of ours) and per function.
 */
const session = new Session();
session.connect();
const post = <T>(method: string, params?: object) =>
  new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function placeOf(url: string): string {
  if (!url) return '(native / idle / GC)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url;
  const ours = /\/(src\/.*)$/.exec(url);
  return ours ? ours[1]! : url;
}

function summarize(profile: Profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const places = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id)!.callFrame;
    // The profiler's own messages (this probe's start and stop) are not the server's work.
    if (frame.url === 'node:inspector') return;
    total += ms;
    const place = frame.functionName === '(idle)' ? '(idle)' : placeOf(frame.url);
    places.set(place, (places.get(place) ?? 0) + ms);
    const fn = `${frame.functionName || '(anonymous)'} ${placeOf(frame.url)}:${frame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + ms);
  });
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => ({ name, ms: Math.round(ms) }));
  return { totalMs: Math.round(total), places: top(places, 10), functions: top(functions, 12) };
}

process.on('message', (message: { profile?: 'start' | 'stop' }) => {
  if (message.profile === 'start') {
    void post('Profiler.enable')
      .then(() => post('Profiler.start'))
      .then(() => process.send?.({ profile: 'started' }));
  } else if (message.profile === 'stop') {
    void post<{ profile: Profile }>('Profiler.stop').then(async ({ profile }) => {
      // BENCH_PROFILE_DIR keeps each raw profile too, for Chrome DevTools or speedscope.
      const dir = process.env.BENCH_PROFILE_DIR;
      if (dir) await writeFile(join(dir, `server-${Date.now()}.cpuprofile`), JSON.stringify(profile));
      process.send?.({ profile: 'stopped', summary: summarize(profile) });
    });
  }
});

/**
 * `{ eld: 'start' }` / `{ eld: 'stop' }`: this process's event-loop delay over the interval
 * (perf_hooks histogram, 10 ms resolution), answered as p50 / p99 / max in ms.
 */
const delay = monitorEventLoopDelay({ resolution: 10 });
process.on('message', (message: { eld?: 'start' | 'stop' }) => {
  if (message.eld === 'start') {
    delay.reset();
    delay.enable();
    process.send?.({ eld: 'started' });
  } else if (message.eld === 'stop') {
    delay.disable();
    const ms = (ns: number) => ns / 1e6;
    process.send?.({ eld: 'stopped', p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) });
  }
});

/** `{ mem: 'start' }` / `{ mem: 'stop' }`: peaks of process.memoryUsage() fields (MB), sampled every 100 ms. */
let memTimer: NodeJS.Timeout | undefined;
const memPeak: Record<string, number> = {};
process.on('message', (message: { mem?: 'start' | 'stop' }) => {
  if (message.mem === 'start') {
    for (const key of Object.keys(memPeak)) delete memPeak[key];
    memTimer = setInterval(() => {
      for (const [key, value] of Object.entries(process.memoryUsage())) memPeak[key] = Math.max(memPeak[key] ?? 0, Math.round(value / 2 ** 20));
    }, 100);
    memTimer.unref();
    // BENCH_HEAP_SAMPLING=<file>: where the interval's allocations come from, collected ones
    // included (a .heapprofile for Chrome DevTools' Memory tab).
    if (process.env.BENCH_HEAP_SAMPLING) {
      post('HeapProfiler.startSampling', { samplingInterval: 64 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }).catch(() => {});
    }
    process.send?.({ mem: 'started' });
  } else if (message.mem === 'stop') {
    clearInterval(memTimer);
    if (process.env.BENCH_HEAP_SAMPLING) {
      const file = process.env.BENCH_HEAP_SAMPLING;
      post<{ profile: object }>('HeapProfiler.stopSampling')
        .then(({ profile }) => writeFile(file, JSON.stringify(profile)))
        .catch(() => {});
    }
    process.send?.({ mem: 'stopped', peak: { ...memPeak } });
  }
});

/**
 * `{ served: 'start' }` / `{ served: 'stop' }`: how long this process took over each HTTP request,
 * from the 'request' event (headers parsed) to the response's 'finish' (handed to the kernel),
 * answered as p50 / p99 / max in ms. Set beside the load generator's figures, it separates time
 * spent in the server from time spent queued in sockets and in the load generator itself.
 */
let serving: number[] | null = null;
const emit = Server.prototype.emit;
Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]) {
  if (serving && event === 'request') {
    const durations = serving;
    const started = performance.now();
    (args[1] as import('node:http').ServerResponse).once('finish', () => durations.push(performance.now() - started));
  }
  return Reflect.apply(emit, this, [event, ...args]) as boolean;
} as typeof Server.prototype.emit;
process.on('message', (message: { served?: 'start' | 'stop' }) => {
  if (message.served === 'start') {
    serving = [];
    process.send?.({ served: 'started' });
  } else if (message.served === 'stop') {
    const sorted = (serving ?? []).sort((a, b) => a - b);
    serving = null;
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
    process.send?.({ served: 'stopped', p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? Number.NaN, count: sorted.length });
  }
});
