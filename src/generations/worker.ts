import { inSpan } from '../telemetry.ts';
import type pg from 'pg';
import type { Db } from '../db/client.ts';
import { claimSubmission, readGeneration, recordPoll, recordRequestId, recordSuccess, recordUpstreamStatus } from '../db/generations.ts';
import type { Generation } from '../generated/prisma/client.ts';
import type { StepOutcome } from '../jobs/queue.ts';
import type { Logger } from '../logger.ts';
import { discardKeptDownload, downloadVideo, type DownloadedVideo } from '../storage/download.ts';
import type { VideoStorage } from '../storage/storage.ts';
import { UpstreamError, type SegmindClient, type UpstreamJobStatus, type UpstreamMetrics } from '../upstream/segmind.ts';
import type { GenerationEvents } from './events.ts';
import { ACTIVE_STATUSES, atDeadline, backoffMs, isStepError, judge, maxBackoffMs, planRetry, type GenerationErrorCode, type StepError, type StepFailure } from './lifecycle.ts';
import { toSegmindRequest } from './rules.ts';

export { backoffMs, type StepFailure } from './lifecycle.ts';

export interface WorkerDeps {
  db: Db;
  /** The pool `db` runs on, for the statements a status poll repeats (src/db/generations.ts). */
  pool: pg.Pool;
  segmind: SegmindClient;
  storage: VideoStorage;
  events: GenerationEvents;
  logger: Logger;
  poll: { initialMs: number; maxMs: number; backoff: number };
  /**
   * How long a generation may wait on Segmind and on retries. Past it, nothing new is submitted and
   * a job still running upstream is given up (DEADLINE_EXCEEDED); a finished one is still collected.
   */
  deadlineMs: number;
  maxVideoBytes: number;
  /** Told of every retry, for metrics. */
  onRetry?(code: string): void;
  /** The `video_url` to submit, when it is not the recorded sourceVideoUrl (S3: a presigned URL; see source-links.ts). */
  sourceUrl?(generation: Generation): Promise<string>;
  /** Told when a generation ends, for its webhook. */
  webhooks?: { generationEnded(generation: Pick<Generation, 'id' | 'callbackUrl'>): Promise<void> };
}

const done: StepOutcome = { next: 'done' };
const again = (afterMs: number): StepOutcome => ({ next: 'again', afterMs: Math.max(0, Math.round(afterMs)) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACTIVE = { in: [...ACTIVE_STATUSES] };
/** Written by every step that succeeds and by every end: nothing is being waited for any more. */
const NOT_RETRYING = { retryCount: 0, retryCode: null, retryMessage: null, retryAt: null };
/**
 * A request_id whose save fails is retried until the deadline, but at least a minute (it names a
 * billed job) and at most half an hour (well within the job engine's one-hour expiry of a step).
 */
const SAVE_REQUEST_ID_MS = { min: 60_000, max: 30 * 60_000 };

/**
 * Advances one generation by one step. Every step re-reads the row, so steps are safe to repeat
 * and any process can take the next one: submit once, poll, copy the MP4, finish. The states and
 * the rules for failures and the deadline are in ./lifecycle.ts.
 */
export class GenerationWorker {
  private readonly deps: WorkerDeps;
  constructor(deps: WorkerDeps) {
    this.deps = deps;
  }

  /**
   * Generations that are unfinished but have not changed for `quietMs`: their step was lost
   * (a job that ran out of retries while the database was down, say). The caller enqueues a
   * step for each; the queue drops it if one is already waiting, and the step itself is safe to
   * repeat, so this can only help. The deadline then still applies.
   */
  async stalled(quietMs: number): Promise<string[]> {
    const rows = await this.deps.db.generation.findMany({
      where: { status: ACTIVE, updatedAt: { lt: new Date(Date.now() - quietMs) } },
      select: { id: true },
      take: 500,
    });
    return rows.map((row) => row.id);
  }

  async step(generationId: string): Promise<StepOutcome> {
    return inSpan('generation step', { 'extendql.generation_id': generationId }, () => this.runStep(generationId));
  }

  private async runStep(generationId: string): Promise<StepOutcome> {
    const generation = await readGeneration(this.deps.pool, generationId);
    if (!generation || (generation.status !== 'QUEUED' && generation.status !== 'RUNNING')) return done;
    try {
      // Once Segmind has the job, every step asks it first, even past the deadline.
      return generation.upstreamRequestId ? await this.poll(generation, generation.upstreamRequestId) : await this.submit(generation);
    } catch (error) {
      if (isStepError(error)) return this.transient(generation, error);
      throw error;
    }
  }

  private deadlineOf(generation: Generation): Date {
    return new Date(generation.createdAt.getTime() + this.deps.deadlineMs);
  }

  private async submit(generation: Generation): Promise<StepOutcome> {
    if (generation.submitStartedAt) {
      // A submit began and its request_id was never saved: Segmind may have billed it.
      return this.fail(generation, {
        code: 'UPSTREAM_SUBMISSION_UNKNOWN',
        message: 'The submission to Segmind was interrupted before its request id was recorded; it was not sent again, to avoid billing twice',
      });
    }
    const deadlineAt = this.deadlineOf(generation);
    if (Date.now() >= deadlineAt.getTime()) {
      // Nothing is submitted past the deadline: the job could not be waited for.
      // A retry code was written by a step, so it is one of the codes (an unknown one is shown as UNKNOWN when read).
      const last = generation.retryCode && { code: generation.retryCode as GenerationErrorCode, message: generation.retryMessage ?? generation.retryCode };
      return this.fail(generation, last ? atDeadline(last, deadlineAt.toISOString()) : this.deadlineExceeded('before it could be submitted to Segmind'));
    }
    // Made before the claim: if it fails, nothing is claimed and the step is simply tried again.
    const videoUrl = this.deps.sourceUrl ? await this.deps.sourceUrl(generation) : generation.sourceVideoUrl;
    // Claim the submission. Only one step anywhere can win this update.
    if (!(await claimSubmission(this.deps.pool, generation.id))) return done;
    this.deps.events.generationUpdated(generation);

    let accepted: { requestId: string; status: UpstreamJobStatus };
    try {
      accepted = await this.deps.segmind.submit(toSegmindRequest(generation, videoUrl));
    } catch (error) {
      if (error instanceof UpstreamError && error.options.certainlyNotReceived) {
        // Not received (or answered with a status that the contract says is not billed): release the claim.
        await this.deps.db.generation.update({ where: { id: generation.id }, data: { submitStartedAt: null } });
      }
      throw error;
    }
    // Logged before anything else can fail: if the save below never succeeds, the billed job is named here.
    this.deps.logger.info({ generationId: generation.id, requestId: accepted.requestId }, 'submitted to Segmind');
    const now = Date.now();
    await this.saveRequestId(generation, accepted, Math.min(Math.max(deadlineAt.getTime(), now + SAVE_REQUEST_ID_MS.min), now + SAVE_REQUEST_ID_MS.max));
    // Subscribers learn that Segmind has it (usually QUEUED there).
    this.deps.events.generationUpdated(generation);
    return again(this.deps.poll.initialMs);
  }

  /**
   * Saves the request_id of an accepted submit, retrying with backoff until `until` so that a
   * database restart does not orphan a billed job. Only then may anything fail the generation.
   */
  private async saveRequestId(generation: Generation, accepted: { requestId: string; status: UpstreamJobStatus }, until: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await recordRequestId(this.deps.pool, generation.id, accepted.requestId, accepted.status);
        return;
      } catch (error) {
        const log = { generationId: generation.id, requestId: accepted.requestId, attempt, err: (error as Error).message };
        if (Date.now() >= until) {
          this.deps.logger.error(log, 'could not record the request_id of a job Segmind accepted; it was not submitted again');
          throw error;
        }
        this.deps.logger.warn(log, 'could not record the request_id yet; retrying');
        await sleep(Math.min(backoffMs(attempt, 100, 5_000), Math.max(0, until - Date.now())));
      }
    }
  }

  private async poll(generation: Generation, requestId: string): Promise<StepOutcome> {
    const answer = await this.deps.segmind.status(requestId);
    if (answer.status === 'QUEUED' || answer.status === 'PROCESSING') return this.waitForJob(generation, answer.status);
    // A 422 on /status carries the failure itself; a 200 FAILED is read from the result.
    if ('error' in answer) return this.jobFailed(generation, answer);
    return this.collect(generation, requestId);
  }

  /** Segmind is still working: poll again, unless the deadline has come. */
  private async waitForJob(generation: Generation, status: 'QUEUED' | 'PROCESSING'): Promise<StepOutcome> {
    const untilDeadline = this.deadlineOf(generation).getTime() - Date.now();
    if (untilDeadline <= 0) {
      return this.fail(generation, this.deadlineExceeded(`while Segmind still had it ${status}`), { upstreamStatus: status });
    }
    await recordPoll(this.deps.pool, generation.id, status);
    if (status !== generation.upstreamStatus || generation.retryCode) this.deps.events.generationUpdated(generation);
    const { initialMs, maxMs, backoff } = this.deps.poll;
    // The last poll comes at the deadline, so a job still running then ends on time.
    return again(Math.min(maxMs, initialMs * backoff ** generation.pollCount, untilDeadline));
  }

  /** Segmind finished the job (and billed it): copy the MP4 into storage and succeed. */
  private async collect(generation: Generation, requestId: string): Promise<StepOutcome> {
    const result = await this.deps.segmind.result(requestId);
    if (result.status === 'FAILED') return this.jobFailed(generation, result);
    if (result.status !== 'COMPLETED') return again(this.deps.poll.initialMs);
    if (generation.upstreamStatus !== 'COMPLETED') {
      await recordUpstreamStatus(this.deps.pool, generation.id, 'COMPLETED');
      this.deps.events.generationUpdated(generation);
    }
    const key = `${generation.plannedVideoId}.mp4`;
    // The temp files are named after the planned video, so a retried copy resumes or reuses them.
    const video = await downloadVideo(result.outputUrl, this.deps.storage, key, {
      maxBytes: this.deps.maxVideoBytes,
      tempName: generation.plannedVideoId,
    });
    return this.succeed(generation, key, video, result.metrics);
  }

  private async succeed(generation: Generation, key: string, video: DownloadedVideo, metrics: UpstreamMetrics): Promise<StepOutcome> {
    const videoId = generation.plannedVideoId;
    try {
      const stored = { ...video, id: videoId, storageKey: key };
      if (!(await recordSuccess(this.deps.pool, generation.id, stored, metrics.cost))) throw new Error('the generation is no longer RUNNING');
    } catch (error) {
      // Another step finished first (its file is this same key: keep it), or the generation was
      // canceled meanwhile (nothing refers to the file: drop it).
      const current = await this.deps.db.generation.findUnique({ where: { id: generation.id }, select: { status: true, video: { select: { id: true } } } });
      if (!current?.video) await this.deps.storage.delete(key).catch(() => {});
      if (current?.status !== 'RUNNING') return done;
      throw error;
    }
    this.deps.logger.info({ generationId: generation.id, bytes: video.byteSize }, 'generation succeeded');
    this.deps.events.generationUpdated(generation);
    await this.deps.webhooks?.generationEnded(generation);
    return done;
  }

  /** The job ran and failed upstream: Segmind's own words, its metrics, and upstreamStatus FAILED. */
  private async jobFailed(generation: Generation, job: { error: string; metrics: UpstreamMetrics }): Promise<StepOutcome> {
    this.deps.logger.info({ generationId: generation.id, metrics: job.metrics }, 'Segmind reports the job failed');
    return this.fail(generation, { code: 'GENERATION_FAILED', message: job.error, upstreamStatus: 422 }, { metrics: job.metrics, upstreamStatus: 'FAILED' });
  }

  private deadlineExceeded(when: string): StepFailure {
    return { code: 'DEADLINE_EXCEEDED', message: `The generation did not finish within ${Math.round(this.deps.deadlineMs / 1000)} s: it ran out of time ${when}` };
  }

  /** Waits (visibly, with backoff, within the deadline) after a transient failure, or fails for good. */
  private async transient(generation: Generation, error: StepError): Promise<StepOutcome> {
    const verdict = judge(error, !generation.upstreamRequestId);
    const backoff = { baseMs: this.deps.poll.initialMs, maxMs: maxBackoffMs(this.deps.deadlineMs, this.deps.poll.initialMs) };
    const plan = verdict.retry ? planRetry(verdict, generation.retryCount, this.deadlineOf(generation), backoff) : verdict;
    if (!('wait' in plan) || !plan.wait) return this.fail(generation, plan.failure);
    const { code, message } = verdict.failure;
    const { count } = await this.deps.db.generation.updateMany({
      where: { id: generation.id, status: ACTIVE },
      data: { retryCount: { increment: 1 }, retryCode: code, retryMessage: message, retryAt: plan.at },
    });
    if (count === 0) return done; // canceled meanwhile: nothing to wait for
    this.deps.onRetry?.(code);
    this.deps.logger.warn({ generationId: generation.id, code, attempt: generation.retryCount + 1, afterMs: plan.afterMs }, 'transient failure; retrying');
    this.deps.events.generationUpdated(generation);
    return again(plan.afterMs);
  }

  private async fail(
    generation: Generation,
    failure: StepFailure,
    upstream: { metrics?: UpstreamMetrics; upstreamStatus?: string } = {},
  ): Promise<StepOutcome> {
    const { count } = await this.deps.db.generation.updateMany({
      where: { id: generation.id, status: ACTIVE },
      data: {
        status: 'FAILED',
        errorCode: failure.code,
        errorMessage: failure.message,
        errorUpstreamStatus: failure.upstreamStatus ?? null,
        completedAt: new Date(),
        ...NOT_RETRYING,
        ...(upstream.upstreamStatus && { upstreamStatus: upstream.upstreamStatus }),
        ...(upstream.metrics?.cost !== undefined && { cost: upstream.metrics.cost }),
      },
    });
    if (count === 1) {
      this.deps.logger.warn({ generationId: generation.id, code: failure.code }, 'generation failed');
      // A copy that was under way will not be tried again: drop what it kept.
      await discardKeptDownload(this.deps.storage, generation.plannedVideoId).catch(() => {});
      this.deps.events.generationUpdated(generation);
      await this.deps.webhooks?.generationEnded(generation);
    }
    return done;
  }
}
