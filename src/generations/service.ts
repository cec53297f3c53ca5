import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../db/client.ts';
import { insertGeneration, insertUpload, readOwnGeneration } from '../db/generations.ts';
import { countGenerations, readHistoryPage, type PageQuery } from '../db/history.ts';
import { inLockedTransaction, isForeignKeyViolation, isUniqueViolation, prepared } from '../db/sql.ts';
import { IdempotencyConflictError, InsufficientCreditsError, InvalidInputError, NotCancelableError, NotFoundError } from '../errors.ts';
import type { Generation, GenerationStatus, Prisma } from '../generated/prisma/client.ts';
import type { JobQueue, SqlExecutor } from '../jobs/queue.ts';
import type { GenerationEvents } from './events.ts';
import { deleteGeneration } from './cleanup.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { ACTIVE_STATUSES } from './lifecycle.ts';
import { enforceKeyLimits, keyUsageToday, type KeyLimits, type KeyUsage } from './limits.ts';
import { rm } from 'node:fs/promises';
import type { VideoStorage } from '../storage/storage.ts';
import { extensionOf } from '../storage/video-types.ts';
import { DEFAULT_QUALITY, estimatedCostUsd, isSourceIdToLookUp, parseExtendVideoInput, type ExtendVideoParams } from './rules.ts';
import { receiveUpload, type ReceivedUpload } from './uploads.ts';

export interface GenerationServiceDeps {
  db: Db;
  /** The pool `db` runs on: new generations are recorded through it directly (see record()). */
  pool: pg.Pool;
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
  /**
   * Why Segmind could not fetch a chained or uploaded source from us (see source-links.ts), or
   * null when it can. Asked per request: the answer is known only once the server listens.
   */
  sourceUnreachable?(): string | null;
  /** Told when a generation ends, for its webhook; judges callbackUrls before they are recorded. */
  webhooks?: {
    generationEnded(generation: Pick<Generation, 'id' | 'callbackUrl'>): Promise<void>;
    /** Why a callbackUrl may not be used (it reaches an internal address), or null. */
    destinationRefusal(callbackUrl: string): Promise<string | null>;
  };
}

/** A chained input's source, as looked up once per request. */
type SourceGeneration = Generation & { video: { id: string } | null };

/** An upload put in storage for a generation: its row id, its object key and its public URL. */
interface StoredUpload {
  id: string;
  key: string;
  url: string;
}

/** What one extendVideo request inserts. */
interface NewGeneration {
  apiKeyId: string;
  params: ExtendVideoParams;
  hash: string;
  cost: number;
  sourceVideoUrl: string;
  upload: ReceivedUpload | null;
  stored: StoredUpload | null;
}

/** Of the normalized parameters; an uploaded video counts by its content. */
function paramsHash(params: ExtendVideoParams, uploadSha256: string | null): string {
  const { idempotencyKey: _key, video: _video, ...rest } = params;
  const keys = Object.keys(rest).sort() as (keyof typeof rest)[];
  const normalized = [...keys.map((key) => [key, rest[key] ?? null]), ...(uploadSha256 ? [['videoSha256', uploadSha256]] : [])];
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex');
}

/** Enforced by the unique index on (apiKeyId, idempotencyKey). */
const IDEMPOTENCY_CONSTRAINT = 'Generation_apiKeyId_idempotencyKey_key';
const SOURCE_CONSTRAINT = 'Generation_sourceId_fkey';

/** Runs pg-boss's statements on the transaction's connection, so the enqueue commits with it. */
const executorOn = (client: pg.ClientBase): SqlExecutor => ({ executeSql: (text, values) => prepared(client, text, values) });

export class GenerationService {
  private readonly keyTurns = new KeyedMutex();

  private readonly deps: GenerationServiceDeps;
  constructor(deps: GenerationServiceDeps) {
    this.deps = deps;
  }

  /** A generation owned by the key, or null: another key's generations look exactly like missing ones. */
  async find(apiKeyId: string, id: string): Promise<Generation | null> {
    return readOwnGeneration(this.deps.pool, apiKeyId, id);
  }

  /** A page of the key's history, newest first, as planned by the schema (one statement for the usual shapes). */
  async page(filter: { apiKeyId: string; status: GenerationStatus | null }, query: PageQuery & Prisma.GenerationFindManyArgs): Promise<Generation[]> {
    // Rows hold the columns the query selects, as Prisma's own findMany with that select returns them.
    const rows = (await readHistoryPage(this.deps.pool, filter, query)) as Generation[] | null;
    return rows ?? this.deps.db.generation.findMany({ ...query, where: { apiKeyId: filter.apiKeyId, ...(filter.status && { status: filter.status }) }, orderBy: { id: 'desc' } });
  }

  /** How many generations the key has (with that status). */
  count(filter: { apiKeyId: string; status: GenerationStatus | null }): Promise<number> {
    return countGenerations(this.deps.pool, filter);
  }

  /**
   * Validates an extend request, records it as QUEUED and enqueues its first step in the same
   * transaction, and returns at once. Nothing is spent upstream here.
   */
  async extend(apiKeyId: string, input: unknown): Promise<Generation> {
    const { params, source } = await this.resolveInput(apiKeyId, input);
    // Refused before the upload is read or anything is recorded: the generation would fail upstream.
    const unreachable = params.videoUrl ? null : this.deps.sourceUnreachable?.();
    if (unreachable) throw new InvalidInputError([{ path: ['input', params.video ? 'video' : 'sourceGenerationId'], message: unreachable }]);
    const refusal = params.callbackUrl ? await this.deps.webhooks?.destinationRefusal(params.callbackUrl) : null;
    if (refusal) throw new InvalidInputError([{ path: ['input', 'callbackUrl'], message: refusal }]);
    const upload = params.video ? await receiveUpload(params.video, this.deps.storage) : null;
    try {
      return await this.record(apiKeyId, params, source, upload);
    } finally {
      // Consumed by the store when it was used; a replay or a refusal leaves it behind.
      if (upload) await rm(upload.tempPath, { force: true });
    }
  }

  /**
   * What extend would charge against the key's daily budget for this input, in USD, with the
   * same rules and defaults; records nothing and asks Segmind nothing.
   */
  async estimate(apiKeyId: string, input: unknown): Promise<{ usd: number; params: ExtendVideoParams }> {
    const { params, source } = await this.resolveInput(apiKeyId, input);
    if (source) this.videoToExtend(source);
    return { usd: estimatedCostUsd(params), params };
  }

  /** The limits every key gets. */
  get limits(): KeyLimits {
    return this.deps.limits;
  }

  /** What a key used since the start of the UTC day, as its daily budget counts it. */
  async usageToday(apiKeyId: string): Promise<KeyUsage> {
    return keyUsageToday(this.deps.pool, apiKeyId);
  }

  /**
   * Validates an input after filling in its defaults. A chained input's source is looked up here,
   * once: an omitted quality is the source's, so a chain keeps its resolution.
   */
  private async resolveInput(apiKeyId: string, input: unknown): Promise<{ params: ExtendVideoParams; source: SourceGeneration | null }> {
    const given = (input ?? {}) as Record<string, unknown>;
    const source = isSourceIdToLookUp(given.sourceGenerationId)
      ? await this.deps.db.generation.findUnique({ where: { id: given.sourceGenerationId, apiKeyId }, include: { video: { select: { id: true } } } })
      : null;
    const params = parseExtendVideoInput({ ...given, quality: given.quality ?? source?.quality ?? DEFAULT_QUALITY });
    if (params.sourceGenerationId && !source) throw new NotFoundError('Generation', params.sourceGenerationId);
    return { params, source };
  }

  /** The public URL of a source generation's video, or why it cannot be extended. */
  private videoToExtend(source: SourceGeneration): string {
    if (source.status === 'SUCCEEDED' && source.video) return this.deps.videoUrl(source.video.id);
    const why = source.videoExpiredAt ? 'its video was removed after VIDEO_RETENTION_DAYS' : `it is ${source.status}`;
    throw new InvalidInputError([{ path: ['input', 'sourceGenerationId'], message: `the source generation has no video to extend (${why})` }]);
  }

  private async record(apiKeyId: string, params: ExtendVideoParams, source: SourceGeneration | null, upload: ReceivedUpload | null): Promise<Generation> {
    const hash = paramsHash(params, upload?.sha256 ?? null);

    if (params.idempotencyKey) {
      const replay = await this.replay(apiKeyId, params.idempotencyKey, hash);
      if (replay) return replay;
    }

    let sourceVideoUrl = source ? this.videoToExtend(source) : (params.videoUrl ?? '');

    const cost = estimatedCostUsd(params);
    const available = await this.deps.availableCredits();
    if (available !== null && available < cost) throw new InsufficientCreditsError(cost, available);

    // An upload is stored first (its object must exist before Segmind is given its URL); if the
    // generation is then refused, the object is removed again.
    const stored = upload ? await this.storeUpload(upload) : null;
    if (stored) sourceVideoUrl = stored.url;

    try {
      const generation = await this.insertGeneration({ apiKeyId, params, hash, cost, sourceVideoUrl, upload, stored });
      this.deps.reserveCredits(cost);
      this.deps.events.generationUpdated(generation);
      return generation;
    } catch (error) {
      if (stored) await this.deps.storage.delete(stored.key).catch(() => {});
      return await this.afterRefusedInsert(error, apiKeyId, params, hash);
    }
  }

  /** Puts an upload in storage under a new random id; returns where it is and its public URL. */
  private async storeUpload(upload: ReceivedUpload): Promise<StoredUpload> {
    const extension = extensionOf(upload.contentType);
    const id = randomBytes(16).toString('base64url');
    const key = `upload-${id}.${extension}`;
    await this.deps.storage.putFile(upload.tempPath, key);
    return { id, key, url: this.deps.uploadUrl(id, extension) };
  }

  /**
   * Checks the key's limits and inserts the upload (if any), the generation and its first job in
   * one transaction. In this process, one key's requests take turns in memory, so a busy key queues
   * here and not on pool connections; across processes, the advisory lock on the key makes the
   * limit checks and the insert atomic per key. Plain pg, not a Prisma interactive transaction: each
   * statement there cost several milliseconds of client CPU, and this runs for every request.
   */
  private insertGeneration(row: NewGeneration): Promise<Generation> {
    const { apiKeyId, params, hash, cost, sourceVideoUrl, upload, stored } = row;
    const transaction = { statementTimeoutMs: 15_000, lockKey: apiKeyId };
    return this.keyTurns.run(apiKeyId, () =>
      inLockedTransaction(this.deps.pool, transaction, async (client) => {
        await enforceKeyLimits(client, apiKeyId, cost, this.deps.limits);
        const now = new Date();
        if (upload && stored) {
          const { byteSize, width, height, durationSeconds } = upload.video;
          const uploadRow = { id: stored.id, apiKeyId, storageKey: stored.key, contentType: upload.contentType, sha256: upload.sha256 };
          await insertUpload(client, { ...uploadRow, byteSize, width, height, durationSeconds }, now);
        }
        const inserted = await insertGeneration(
          client,
          {
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
          now,
        );
        await this.deps.queue.enqueue(inserted.id, { db: executorOn(client) });
        return inserted;
      }),
    );
  }

  /** What a refused insert means to the client: a vanished source, a raced replay, or the error itself. */
  private async afterRefusedInsert(error: unknown, apiKeyId: string, params: ExtendVideoParams, hash: string): Promise<Generation> {
    // The source was deleted between its lookup and this insert.
    if (params.sourceGenerationId && isForeignKeyViolation(error, SOURCE_CONSTRAINT)) throw new NotFoundError('Generation', params.sourceGenerationId);
    // Two requests with one idempotency key raced; the loser answers like a replay.
    if (params.idempotencyKey && isUniqueViolation(error, IDEMPOTENCY_CONSTRAINT)) {
      const replay = await this.replay(apiKeyId, params.idempotencyKey, hash);
      if (replay) return replay;
    }
    throw error;
  }

  /**
   * Moves a QUEUED or RUNNING generation to CANCELED; canceling a CANCELED one again is a no-op.
   * The worker checks the status before every step, so nothing is submitted afterwards, and a
   * result that arrives later is dropped. (Segmind has no cancel call: a job it already has runs on.)
   */
  async cancel(apiKeyId: string, id: string): Promise<Generation> {
    const { count } = await this.deps.db.generation.updateMany({
      where: { id, apiKeyId, status: { in: [...ACTIVE_STATUSES] } },
      data: { status: 'CANCELED', completedAt: new Date() },
    });
    const generation = await this.find(apiKeyId, id);
    if (!generation) throw new NotFoundError('Generation', id);
    if (count === 1) {
      this.deps.events.generationUpdated(generation);
      await this.deps.webhooks?.generationEnded(generation);
    } else if (generation.status !== 'CANCELED') throw new NotCancelableError(id, generation.status);
    return generation;
  }

  /** Deletes a finished generation, its stored video and its unused upload; see deleteGeneration. */
  async delete(apiKeyId: string, id: string): Promise<void> {
    await deleteGeneration(this.deps, apiKeyId, id);
  }

  private async replay(apiKeyId: string, idempotencyKey: string, hash: string): Promise<Generation | null> {
    const existing = await this.deps.db.generation.findUnique({ where: { apiKeyId_idempotencyKey: { apiKeyId, idempotencyKey } } });
    if (!existing) return null;
    if (existing.paramsHash !== hash) throw new IdempotencyConflictError(idempotencyKey);
    return existing;
  }
}
