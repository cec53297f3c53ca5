// The simulator's jobs: kept in memory and, like Segmind's, outside the caller's process. Each
// job is a small JSON file under <mediaDir>/jobs, written atomically (temp file + rename), and
// read back when a request id the process does not know is asked about. A job's status and
// metrics follow from its stored timestamps, so a job submitted before a restart is QUEUED,
// PROCESSING or finished after it exactly as it would have been without one.

import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExtendParams } from './rules.ts';

export type JobStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

/** What is stored on disk. */
export interface StoredJob {
  requestId: string;
  /** Which API submitted it. */
  api: 'v1' | 'v2';
  params: ExtendParams;
  createdAt: number;
  /** USD charged at submission (refunded if the job failed). */
  cost: number;
  seed: number;
  /** Balance after this job's charge (and refund, if it failed). */
  remainingCredits: number;
  /** Set by failNextJob or by the source check; the job ends FAILED with it. */
  failure?: string;
  /** The fetched source passed the check; its last frame is the start of the output. */
  source?: { width: number; height: number; lastFrame: string };
  /** When the source check ended (fetchSources only). */
  sourceCheckedAt?: number;
  final?: 'COMPLETED' | 'FAILED';
  settledAt?: number;
  expired: boolean;
}

/** A job as the running simulator holds it. */
export interface JobRecord extends StoredJob {
  /** True when this process charged the job (so a failure refunds this process's balance). */
  chargedHere: boolean;
  sourceCheck?: Promise<void>;
  settled: Promise<void>;
  markSettled: () => void;
}

export interface Timing {
  queueMs: number;
  processingMs: number;
  resultTtlMs: number;
}

const seconds = (ms: number): number => Math.round(ms) / 1000;
/** Request ids are UUIDs: anything else is never looked up on disk. */
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function withRuntime(stored: StoredJob, chargedHere: boolean): JobRecord {
  let markSettled = () => {};
  const settled = new Promise<void>((resolve) => (markSettled = resolve));
  const job: JobRecord = { ...stored, chargedHere, settled, markSettled };
  if (stored.final) markSettled();
  return job;
}

export function statusOf(job: StoredJob, timing: Timing, now = Date.now()): JobStatus {
  if (job.final) return job.final;
  return now - job.createdAt < timing.queueMs ? 'QUEUED' : 'PROCESSING';
}

/** False once the v2 result answers 404 (expire() or resultTtlMs after submission). */
export function isLive(job: StoredJob, timing: Timing, now = Date.now()): boolean {
  return !job.expired && now - job.createdAt < timing.resultTtlMs;
}

export function metrics(job: StoredJob, timing: Timing, now = Date.now()) {
  const elapsed = (job.settledAt ?? now) - job.createdAt;
  return {
    queue_time: seconds(Math.min(elapsed, timing.queueMs)),
    inference_time: seconds(Math.max(0, elapsed - timing.queueMs)),
    total_time: seconds(elapsed),
  };
}

function stored(job: JobRecord): StoredJob {
  const { chargedHere: _charged, sourceCheck: _check, settled: _settled, markSettled: _mark, ...rest } = job;
  return rest;
}

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly loading = new Map<string, Promise<JobRecord | undefined>>();
  /** Per job, the last write: writes of one job land in order. */
  private readonly writes = new Map<string, Promise<void>>();
  readonly dir: string;

  /** `onLoad` is told about every job read back from disk (to resume its timers). */
  private readonly onLoad: (job: JobRecord) => void;
  constructor(mediaDir: string, onLoad: (job: JobRecord) => void) {
    this.onLoad = onLoad;
    this.dir = path.join(path.resolve(mediaDir), 'jobs');
  }

  all(): JobRecord[] {
    return [...this.jobs.values()];
  }

  /** Only jobs this process knows; no disk read. */
  cached(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  /** The job, from memory or from disk. */
  async find(id: string): Promise<JobRecord | undefined> {
    const known = this.jobs.get(id);
    if (known || !REQUEST_ID.test(id)) return known;
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.load(id).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  /** Adds a new job and writes it; resolves once it is on disk. */
  async add(job: JobRecord): Promise<void> {
    this.jobs.set(job.requestId, job);
    try {
      await this.save(job);
    } catch (err) {
      this.jobs.delete(job.requestId); // not stored: the job was never accepted
      throw err;
    }
  }

  /** Writes the job's current state (atomically, after any earlier write of it). */
  save(job: JobRecord): Promise<void> {
    const snapshot = JSON.stringify(stored(job));
    const previous = this.writes.get(job.requestId) ?? Promise.resolve();
    const next = previous.then(() => this.write(job.requestId, snapshot));
    const settledWrite = next.catch(() => undefined);
    this.writes.set(job.requestId, settledWrite);
    void settledWrite.then(() => {
      if (this.writes.get(job.requestId) === settledWrite) this.writes.delete(job.requestId);
    });
    return next;
  }

  /** Resolves when every write started so far has landed. */
  async flush(): Promise<void> {
    await Promise.all(this.writes.values());
  }

  private async write(id: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${id}.json`);
    const tmp = `${file}.${randomUUID()}.tmp`;
    try {
      await writeFile(tmp, text);
      await rename(tmp, file); // readers see the old or the new state, never half of one
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private async load(id: string): Promise<JobRecord | undefined> {
    let parsed: StoredJob;
    try {
      parsed = JSON.parse(await readFile(path.join(this.dir, `${id}.json`), 'utf8')) as StoredJob;
    } catch {
      return undefined; // unknown (or unreadable): as Segmind, "not found"
    }
    if (parsed?.requestId !== id) return undefined;
    const job = this.jobs.get(id) ?? withRuntime(parsed, false);
    if (!this.jobs.has(id)) {
      this.jobs.set(id, job);
      this.onLoad(job);
    }
    return job;
  }
}
