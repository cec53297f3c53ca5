import { inSpan } from '../telemetry.js';
import type { Db } from '../db/client.js';
import type { Generation } from '../generated/prisma/client.js';
import type { StepOutcome } from '../jobs/queue.js';
import type { Logger } from '../logger.js';
import { DownloadError, downloadVideo } from '../storage/download.js';
import type { VideoStorage } from '../storage/storage.js';
import { UpstreamError, type SegmindClient, type UpstreamMetrics } from '../upstream/segmind.js';
import type { GenerationEvents } from './events.js';
import { toSegmindRequest } from './rules.js';

export interface WorkerDeps {
  db: Db;
  segmind: SegmindClient;
  storage: VideoStorage;
  events: GenerationEvents;
  logger: Logger;
  poll: { initialMs: number; maxMs: number; backoff: number };
  /** A generation still unfinished this long after creation fails with DEADLINE_EXCEEDED. */
  deadlineMs: number;
  maxVideoBytes: number;
  /** Transient failures of one step tolerated before the generation fails. */
  maxRetries?: number;
  /** Told of every retry, for metrics. */
  onRetry?(code: string): void;
  /** The `video_url` to submit, when it is not the recorded sourceVideoUrl (S3: a presigned URL; see source-links.ts). */
  sourceUrl?(generation: Generation): Promise<string>;
  /** Told when a generation ends, for its webhook. */
  webhooks?: { generationEnded(generation: Pick<Generation, 'id' | 'callbackUrl'>): Promise<void> };
}

export interface StepFailure {
  code: string;
  message: string;
  upstreamStatus?: number;
}

const done: StepOutcome = { next: 'done' };
const again = (afterMs: number): StepOutcome => ({ next: 'again', afterMs: Math.max(0, Math.round(afterMs)) });

/** Capped exponential backoff with full jitter on the upper half, so retries don't stampede. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, factor = 2): number {
  const ceiling = Math.min(maxMs, baseMs * factor ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Advances one generation by one step. Every step re-reads the row, so steps are safe to repeat
 * and any process can take the next one: submit once, poll, copy the MP4, finish.
 */
export class GenerationWorker {
  private readonly maxRetries: number;

  constructor(private readonly deps: WorkerDeps) {
    this.maxRetries = deps.maxRetries ?? 8;
  }

  /**
   * Generations that are unfinished but have not changed for `quietMs`: their step was lost
   * (a job that ran out of retries while the database was down, say). The caller enqueues a
   * step for each; the queue drops it if one is already waiting, and the step itself is safe to
   * repeat, so this can only help. The deadline then still applies.
   */
  async stalled(quietMs: number): Promise<string[]> {
    const rows = await this.deps.db.generation.findMany({
      where: { status: { in: ['QUEUED', 'RUNNING'] }, updatedAt: { lt: new Date(Date.now() - quietMs) } },
      select: { id: true },
      take: 500,
    });
    return rows.map((row) => row.id);
  }

  async step(generationId: string): Promise<StepOutcome> {
    return inSpan('generation step', { 'extendql.generation_id': generationId }, () => this.runStep(generationId));
  }

  private async runStep(generationId: string): Promise<StepOutcome> {
    const generation = await this.deps.db.generation.findUnique({ where: { id: generationId } });
    if (!generation || generation.status === 'SUCCEEDED' || generation.status === 'FAILED' || generation.status === 'CANCELED') return done;
    if (Date.now() - generation.createdAt.getTime() > this.deps.deadlineMs) {
      await this.fail(generation, { code: 'DEADLINE_EXCEEDED', message: `The generation did not finish within ${Math.round(this.deps.deadlineMs / 1000)} s` });
      return done;
    }
    try {
      return generation.upstreamRequestId ? await this.poll(generation, generation.upstreamRequestId) : await this.submit(generation);
    } catch (error) {
      if (error instanceof UpstreamError || error instanceof DownloadError) return this.transient(generation, error);
      throw error;
    }
  }

  private async submit(generation: Generation): Promise<StepOutcome> {
    if (generation.submitStartedAt) {
      // A submit began and its request_id was never saved: Segmind may have billed it.
      await this.fail(generation, {
        code: 'UPSTREAM_SUBMISSION_UNKNOWN',
        message: 'The submission to Segmind was interrupted before its request id was recorded; it was not sent again, to avoid billing twice',
      });
      return done;
    }
    // Made before the claim: if it fails, nothing is claimed and the step is simply tried again.
    const videoUrl = this.deps.sourceUrl ? await this.deps.sourceUrl(generation) : generation.sourceVideoUrl;
    // Claim the submission. Only one step anywhere can win this update.
    const claimed = await this.deps.db.generation.updateMany({
      where: { id: generation.id, status: { in: ['QUEUED', 'RUNNING'] }, submitStartedAt: null, upstreamRequestId: null },
      data: { status: 'RUNNING', submitStartedAt: new Date(), startedAt: generation.startedAt ?? new Date() },
    });
    if (claimed.count === 0) return done;
    this.deps.events.generationUpdated(generation.id);

    let requestId: string;
    let status: string;
    try {
      ({ requestId, status } = await this.deps.segmind.submit(toSegmindRequest(generation, videoUrl)));
    } catch (error) {
      if (error instanceof UpstreamError && error.options.certainlyNotReceived) {
        // Not received (or answered with a status that the contract says is not billed): release the claim.
        await this.deps.db.generation.update({ where: { id: generation.id }, data: { submitStartedAt: null } });
      }
      throw error;
    }
    await this.deps.db.generation.update({
      where: { id: generation.id },
      data: { upstreamRequestId: requestId, upstreamStatus: status, retryCount: 0 },
    });
    this.deps.logger.info({ generationId: generation.id, requestId }, 'submitted to Segmind');
    // Subscribers learn that Segmind has it (usually QUEUED there).
    this.deps.events.generationUpdated(generation.id);
    return again(this.deps.poll.initialMs);
  }

  private async poll(generation: Generation, requestId: string): Promise<StepOutcome> {
    const status = await this.deps.segmind.status(requestId);
    if (status === 'QUEUED' || status === 'PROCESSING') {
      await this.deps.db.generation.update({
        where: { id: generation.id },
        data: { upstreamStatus: status, pollCount: { increment: 1 }, retryCount: 0 },
      });
      if (status !== generation.upstreamStatus) this.deps.events.generationUpdated(generation.id);
      const { initialMs, maxMs, backoff } = this.deps.poll;
      return again(Math.min(maxMs, initialMs * backoff ** generation.pollCount));
    }

    const result = await this.deps.segmind.result(requestId);
    if (result.status === 'FAILED') {
      await this.fail(generation, { code: 'GENERATION_FAILED', message: result.error, upstreamStatus: 422 }, result.metrics);
      return done;
    }
    if (result.status !== 'COMPLETED') return again(this.deps.poll.initialMs);

    const videoId = generation.plannedVideoId;
    const key = `${videoId}.mp4`;
    const video = await downloadVideo(result.outputUrl, this.deps.storage, key, { maxBytes: this.deps.maxVideoBytes });
    try {
      await this.deps.db.$transaction([
        this.deps.db.video.create({
          data: {
            id: videoId,
            generationId: generation.id,
            storageKey: key,
            contentType: video.contentType,
            byteSize: video.byteSize,
            width: video.width,
            height: video.height,
            durationSeconds: video.durationSeconds,
            sha256: video.sha256,
          },
        }),
        this.deps.db.generation.update({
          where: { id: generation.id, status: 'RUNNING' },
          data: {
            status: 'SUCCEEDED',
            upstreamStatus: 'COMPLETED',
            completedAt: new Date(),
            retryCount: 0,
            ...(result.metrics.cost !== undefined && { cost: result.metrics.cost }),
          },
        }),
      ]);
    } catch (error) {
      // Another step finished first (its file is this same key: keep it), or the generation was
      // canceled meanwhile (nothing refers to the file: drop it).
      const current = await this.deps.db.generation.findUnique({ where: { id: generation.id }, select: { status: true, video: { select: { id: true } } } });
      if (!current?.video) await this.deps.storage.delete(key).catch(() => {});
      if (current?.status !== 'RUNNING') return done;
      throw error;
    }
    this.deps.logger.info({ generationId: generation.id, bytes: video.byteSize }, 'generation succeeded');
    this.deps.events.generationUpdated(generation.id);
    await this.deps.webhooks?.generationEnded(generation);
    return done;
  }

  /** Decides between another try (with backoff, or at Segmind's reset time) and a typed failure. */
  private async transient(generation: Generation, error: UpstreamError | DownloadError): Promise<StepOutcome> {
    const submitting = !generation.upstreamRequestId;
    const retryable =
      error instanceof UpstreamError
        ? error.retryable && (!submitting || error.options.certainlyNotReceived === true)
        : error.code !== 'OUTPUT_NOT_MP4' && error.code !== 'OUTPUT_TOO_LARGE';
    // An open circuit made no call at all: wait for it without using up a retry (the deadline still applies).
    const circuitOpen = error instanceof UpstreamError && error.code === 'UPSTREAM_CIRCUIT_OPEN';
    if (circuitOpen || (retryable && generation.retryCount < this.maxRetries)) {
      if (!circuitOpen) await this.deps.db.generation.update({ where: { id: generation.id }, data: { retryCount: { increment: 1 } } });
      this.deps.onRetry?.(error.code);
      const delay = backoffMs(generation.retryCount, this.deps.poll.initialMs, 60_000);
      const retryAt = error instanceof UpstreamError ? error.options.retryAt : undefined;
      const untilReset = retryAt ? retryAt.getTime() - Date.now() + Math.random() * 1000 : 0;
      this.deps.logger.warn({ generationId: generation.id, code: error.code, attempt: generation.retryCount + 1 }, 'transient upstream failure; retrying');
      return again(Math.max(delay, untilReset));
    }
    const ambiguousSubmit = submitting && error instanceof UpstreamError && !error.options.certainlyNotReceived;
    await this.fail(generation, {
      code: ambiguousSubmit ? 'UPSTREAM_SUBMISSION_UNKNOWN' : error.code,
      message: ambiguousSubmit
        ? `${error.message}. The request may have reached Segmind, so it was not sent again, to avoid billing twice`
        : error.message,
      upstreamStatus: error instanceof UpstreamError ? error.status : error.httpStatus,
    });
    return done;
  }

  private async fail(generation: Generation, failure: StepFailure, metrics?: UpstreamMetrics): Promise<void> {
    const { count } = await this.deps.db.generation.updateMany({
      where: { id: generation.id, status: { in: ['QUEUED', 'RUNNING'] } },
      data: {
        status: 'FAILED',
        errorCode: failure.code,
        errorMessage: failure.message,
        errorUpstreamStatus: failure.upstreamStatus ?? null,
        completedAt: new Date(),
        ...(metrics?.cost !== undefined && { cost: metrics.cost }),
      },
    });
    if (count === 1) {
      this.deps.logger.warn({ generationId: generation.id, code: failure.code }, 'generation failed');
      this.deps.events.generationUpdated(generation.id);
      await this.deps.webhooks?.generationEnded(generation);
    }
  }
}
