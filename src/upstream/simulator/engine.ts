// The life of a simulated job: charged at submission, QUEUED for queueMs, then PROCESSING (when
// the source is fetched and checked, if the simulator fetches sources) for processingMs, then
// COMPLETED or FAILED (refunded). Timers drive it in the process that accepted the job; a job
// read back from disk after a restart gets its timers again from its stored timestamps.

import { randomInt, randomUUID } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { continuationSize, createOutputCache, extractLastFrame, type OutputCache } from './continuation.ts';
import { JobStore, withRuntime, type JobRecord, type Timing } from './jobs.ts';
import { createMp4Cache, type Mp4Cache } from './mp4.ts';
import { OUTPUT_SIZE, type ExtendParams } from './rules.ts';
import { fetchSource } from './source.ts';

export interface Sim {
  apiKey: string;
  fetchSources: boolean;
  timing: Timing;
  store: JobStore;
  /** Colour-bar outputs, for jobs whose source was not fetched. */
  patterns: Mp4Cache;
  /** Outputs made from the fetched source, per request id. */
  outputs: OutputCache;
  sourcesDir: string;
  balance: number;
  pendingFailure?: string;
  baseUrl: string;
  fetchedSources: string[];
  timers: Set<NodeJS.Timeout>;
  /** Source checks under way; close() waits for them to stop. */
  checks: Set<Promise<void>>;
  closing: AbortController;
}

export const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6;

export function createSim(options: { apiKey: string; mediaDir: string; credits?: number; fetchSources?: boolean; timing: Timing }): Sim {
  const sim: Sim = {
    apiKey: options.apiKey,
    fetchSources: options.fetchSources ?? false,
    timing: options.timing,
    store: new JobStore(options.mediaDir, (job) => scheduleJob(sim, job)),
    patterns: createMp4Cache(options.mediaDir),
    outputs: createOutputCache(options.mediaDir),
    sourcesDir: path.join(path.resolve(options.mediaDir), 'sources'),
    balance: roundUsd(options.credits ?? 100),
    baseUrl: '',
    fetchedSources: [],
    timers: new Set(),
    checks: new Set(),
    closing: new AbortController(),
  };
  return sim;
}

/** A timer that close() can clear. */
export function later(sim: Sim, ms: number, fn: () => void): void {
  const timer = setTimeout(() => {
    sim.timers.delete(timer);
    fn();
  }, Math.max(0, ms));
  sim.timers.add(timer);
}

/** Charges, stores (on disk before the caller answers) and schedules a new job. */
export async function createJob(sim: Sim, params: ExtendParams, api: 'v1' | 'v2', cost: number): Promise<JobRecord> {
  sim.balance = roundUsd(sim.balance - cost);
  const job = withRuntime(
    {
      requestId: randomUUID(),
      api,
      params,
      createdAt: Date.now(),
      cost,
      seed: params.seed ?? randomInt(1, 1_000_000),
      remainingCredits: sim.balance,
      failure: sim.pendingFailure,
      expired: false,
    },
    true,
  );
  sim.pendingFailure = undefined;
  try {
    await sim.store.add(job);
  } catch (err) {
    sim.balance = roundUsd(sim.balance + job.cost); // answered 500: not accepted, not billed
    throw err;
  }
  if (job.failure === undefined && !sim.fetchSources) {
    const { width, height } = OUTPUT_SIZE[params.quality];
    sim.patterns.get(width, height, params.duration).catch(() => undefined); // warm the cache now
  }
  scheduleJob(sim, job);
  return job;
}

/** Timers for what is still ahead of the job: the source check, then the end. */
export function scheduleJob(sim: Sim, job: JobRecord): void {
  if (job.final) return;
  const now = Date.now();
  const processingAt = job.createdAt + sim.timing.queueMs;
  if (sim.fetchSources && job.failure === undefined && job.sourceCheckedAt === undefined) {
    later(sim, processingAt - now, () => {
      const check = checkSource(sim, job);
      job.sourceCheck = check;
      sim.checks.add(check);
      void check.finally(() => sim.checks.delete(check));
    });
  }
  later(sim, processingAt + sim.timing.processingMs - now, () => {
    void (job.sourceCheck ?? Promise.resolve()).then(() => {
      if (!sim.closing.signal.aborted) void settle(sim, job).catch(() => undefined);
    });
  });
}

/**
 * Fetches and checks the source; on success keeps its last frame (the start of the output) and
 * starts encoding the output. Interrupted by close(), it records nothing: the next start checks again.
 */
async function checkSource(sim: Sim, job: JobRecord): Promise<void> {
  sim.fetchedSources.push(job.params.video_url);
  await mkdir(sim.sourcesDir, { recursive: true });
  const file = path.join(sim.sourcesDir, `${job.requestId}.${randomUUID()}.src`); // never shared with another process
  try {
    const check = await fetchSource(job.params.video_url, file, sim.closing.signal);
    if (!check.ok) {
      job.failure = check.error;
    } else {
      const lastFrame = `${job.requestId}.png`;
      const size = continuationSize(OUTPUT_SIZE[job.params.quality], check);
      try {
        await extractLastFrame(file, path.join(sim.sourcesDir, lastFrame), size);
        job.source = { width: check.width, height: check.height, lastFrame };
      } catch {
        job.failure = 'video_url could not be decoded as a video';
      }
    }
  } catch {
    return; // closing
  } finally {
    await rm(file, { force: true });
  }
  if (sim.closing.signal.aborted) return;
  job.sourceCheckedAt = Date.now();
  await sim.store.save(job).catch(() => undefined);
  if (job.source) outputFile(sim, job).catch(() => undefined); // ready by the time it is asked for
}

async function settle(sim: Sim, job: JobRecord): Promise<void> {
  if (job.final) return;
  const dueAt = job.createdAt + sim.timing.queueMs + sim.timing.processingMs;
  job.final = job.failure === undefined ? 'COMPLETED' : 'FAILED';
  if (job.chargedHere) {
    if (job.final === 'FAILED') sim.balance = roundUsd(sim.balance + job.cost); // failed jobs are not billed
    job.remainingCredits = sim.balance;
  } else if (job.final === 'FAILED') {
    job.remainingCredits = roundUsd(job.remainingCredits + job.cost);
  }
  job.settledAt = Math.min(Date.now(), Math.max(dueAt, job.sourceCheckedAt ?? 0));
  job.markSettled();
  await sim.store.save(job);
}

/** The job's output MP4: made from its source if it was fetched, else the colour-bar pattern. */
export async function outputFile(sim: Sim, job: JobRecord): Promise<{ file: string; size: number }> {
  const { params } = job;
  let file: string;
  if (job.source) {
    const lastFrame = path.join(sim.sourcesDir, job.source.lastFrame);
    const size = continuationSize(OUTPUT_SIZE[params.quality], job.source);
    file = await sim.outputs.get(job.requestId, { lastFrame, size, seconds: params.duration, prompt: params.prompt });
    await rm(lastFrame, { force: true }); // the output is cached now
  } else {
    const { width, height } = OUTPUT_SIZE[params.quality];
    file = await sim.patterns.get(width, height, params.duration);
  }
  return { file, size: (await stat(file)).size };
}
