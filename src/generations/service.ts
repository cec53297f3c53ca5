import { createHash, randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { fromPrisma } from 'pg-boss';
import type { Db } from '../db/client.js';
import { IdempotencyConflictError, InsufficientCreditsError, InvalidInputError, NotCancelableError, NotFoundError } from '../errors.js';
import type { Generation } from '../generated/prisma/client.js';
import type { JobQueue } from '../jobs/queue.js';
import type { GenerationEvents } from './events.js';
import { KeyedMutex } from './keyed-mutex.js';
import { enforceKeyLimits, type KeyLimits } from './limits.js';
import { rm } from 'node:fs/promises';
import type { VideoStorage } from '../storage/storage.js';
import { estimatedCostUsd, parseExtendVideoInput, type ExtendVideoParams } from './rules.js';
import { receiveUpload, type ReceivedUpload } from './uploads.js';

export interface GenerationServiceDeps {
  db: Db;
  queue: JobQueue;
  events: GenerationEvents;
  /** Public URL of a stored video, as Segmind will fetch it when a generation is extended. */
  videoUrl(videoId: string): string;
  /** Public URL of an uploaded source video. */
  uploadUrl(uploadId: string, extension: 'mp4' | 'mov'): string;
  /** Where uploaded source videos are kept. */
  storage: VideoStorage;
  /** Spendable upstream balance in USD, or null when unknown (then upstream decides). */
  availableCredits(): Promise<number | null>;
  /** Records a spend decided locally, so that a burst of requests can't overdraw the balance. */
  reserveCredits(usd: number): void;
  limits: KeyLimits;
  /** Told when a generation ends, for its webhook. */
  webhooks?: { generationEnded(generation: Pick<Generation, 'id' | 'callbackUrl'>): Promise<void> };
}

export const TERMINAL_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELED'] as const;

/** Of the normalized parameters; an uploaded video counts by its content. */
function paramsHash(params: ExtendVideoParams, uploadSha256: string | null): string {
  const { idempotencyKey: _key, video: _video, ...rest } = params;
  const keys = Object.keys(rest).sort() as (keyof typeof rest)[];
  const normalized = [...keys.map((key) => [key, rest[key] ?? null]), ...(uploadSha256 ? [['videoSha256', uploadSha256]] : [])];
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex');
}

function pick({ byteSize, width, height, durationSeconds }: ReceivedUpload['video']) {
  return { byteSize, width, height, durationSeconds };
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'P2002';
}

export class GenerationService {
  private readonly keyTurns = new KeyedMutex();

  constructor(private readonly deps: GenerationServiceDeps) {}

  /** A generation owned by the key, or null: another key's generations look exactly like missing ones. */
  async find(apiKeyId: string, id: string): Promise<Generation | null> {
    return this.deps.db.generation.findFirst({ where: { id, apiKeyId } });
  }

  /**
   * Validates an extend request, records it as QUEUED and enqueues its first step in the same
   * transaction, and returns at once. Nothing is spent upstream here.
   */
  async extend(apiKeyId: string, input: unknown): Promise<Generation> {
    const params = parseExtendVideoInput(input);
    const upload = params.video ? await receiveUpload(params.video, this.deps.storage) : null;
    try {
      return await this.record(apiKeyId, params, upload);
    } finally {
      // Consumed by the store when it was used; a replay or a refusal leaves it behind.
      if (upload) await rm(upload.tempPath, { force: true });
    }
  }

  private async record(apiKeyId: string, params: ExtendVideoParams, upload: ReceivedUpload | null): Promise<Generation> {
    const hash = paramsHash(params, upload?.sha256 ?? null);

    if (params.idempotencyKey) {
      const replay = await this.replay(apiKeyId, params.idempotencyKey, hash);
      if (replay) return replay;
    }

    let sourceVideoUrl = params.videoUrl ?? '';
    if (params.sourceGenerationId) {
      const source = await this.deps.db.generation.findFirst({
        where: { id: params.sourceGenerationId, apiKeyId },
        include: { video: true },
      });
      if (!source) throw new NotFoundError('Generation', params.sourceGenerationId);
      if (source.status !== 'SUCCEEDED' || !source.video) {
        throw new InvalidInputError([
          { path: ['input', 'sourceGenerationId'], message: `the source generation has no video to extend (it is ${source.status})` },
        ]);
      }
      sourceVideoUrl = this.deps.videoUrl(source.video.id);
    }

    const cost = estimatedCostUsd(params);
    const available = await this.deps.availableCredits();
    if (available !== null && available < cost) throw new InsufficientCreditsError(cost, available);

    // An upload is stored first (its object must exist before Segmind is given its URL); if the
    // generation is then refused, the object is removed again.
    let stored: { id: string; key: string } | null = null;
    if (upload) {
      const extension = upload.contentType === 'video/quicktime' ? 'mov' : 'mp4';
      const id = randomBytes(16).toString('base64url');
      stored = { id, key: `upload-${id}.${extension}` };
      await this.deps.storage.putFile(upload.tempPath, stored.key);
      sourceVideoUrl = this.deps.uploadUrl(id, extension);
    }

    try {
      // In this process, one key's requests take turns in memory; across processes, the advisory
      // lock below makes the limit checks and the insert atomic per key.
      const generation = await this.keyTurns.run(apiKeyId, () => this.deps.db.$transaction(async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${apiKeyId}))`;
        await enforceKeyLimits(tx, apiKeyId, cost, this.deps.limits);
        if (upload && stored) {
          await tx.sourceUpload.create({
            data: { id: stored.id, apiKeyId, storageKey: stored.key, contentType: upload.contentType, sha256: upload.sha256, ...pick(upload.video) },
          });
        }
        const row = await tx.generation.create({
          data: {
            id: uuidv7(),
            apiKeyId,
            prompt: params.prompt,
            negativePrompt: params.negativePrompt ?? null,
            duration: params.duration,
            quality: params.quality,
            motionMode: params.motionMode,
            seed: params.seed ?? null,
            style: params.style ?? null,
            sourceVideoUrl,
            sourceId: params.sourceGenerationId ?? null,
            sourceUploadId: stored?.id ?? null,
            callbackUrl: params.callbackUrl ?? null,
            idempotencyKey: params.idempotencyKey ?? null,
            paramsHash: hash,
            plannedVideoId: randomBytes(16).toString('base64url'),
          },
        });
        await this.deps.queue.enqueue(row.id, { db: fromPrisma(tx) });
        return row;
      }, { maxWait: 10_000, timeout: 15_000 }));
      this.deps.reserveCredits(cost);
      this.deps.events.generationUpdated(generation.id);
      return generation;
    } catch (error) {
      if (stored) await this.deps.storage.delete(stored.key).catch(() => {});
      // Two requests with one idempotency key raced; the loser answers like a replay.
      if (params.idempotencyKey && isUniqueViolation(error)) {
        const replay = await this.replay(apiKeyId, params.idempotencyKey, hash);
        if (replay) return replay;
      }
      throw error;
    }
  }

  /**
   * Moves a QUEUED or RUNNING generation to CANCELED; canceling a CANCELED one again is a no-op.
   * The worker checks the status before every step, so nothing is submitted afterwards, and a
   * result that arrives later is dropped. (Segmind has no cancel call: a job it already has runs on.)
   */
  async cancel(apiKeyId: string, id: string): Promise<Generation> {
    const { count } = await this.deps.db.generation.updateMany({
      where: { id, apiKeyId, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'CANCELED', completedAt: new Date() },
    });
    const generation = await this.find(apiKeyId, id);
    if (!generation) throw new NotFoundError('Generation', id);
    if (count === 1) {
      this.deps.events.generationUpdated(id);
      await this.deps.webhooks?.generationEnded(generation);
    } else if (generation.status !== 'CANCELED') throw new NotCancelableError(id, generation.status);
    return generation;
  }

  private async replay(apiKeyId: string, idempotencyKey: string, hash: string): Promise<Generation | null> {
    const existing = await this.deps.db.generation.findUnique({ where: { apiKeyId_idempotencyKey: { apiKeyId, idempotencyKey } } });
    if (!existing) return null;
    if (existing.paramsHash !== hash) throw new IdempotencyConflictError(idempotencyKey);
    return existing;
  }
}
