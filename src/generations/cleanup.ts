import type { Db } from '../db/client.ts';
import { HasExtensionsError, NotDeletableError, NotFoundError } from '../errors.ts';
import type { GenerationStatus, Prisma, VideoQuality } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { VideoStorage } from '../storage/storage.ts';
import { ACTIVE_STATUSES, isTerminal } from './lifecycle.ts';

export interface CleanupDeps {
  db: Db;
  storage: VideoStorage;
}

type Tx = Prisma.TransactionClient;

const DAY_MS = 24 * 60 * 60_000;
/** Longer than any period a per-key limit counts (a minute, a UTC day). */
const TOMBSTONE_KEPT_MS = 2 * DAY_MS;
/** Storage calls run inside the transactions below; an S3 delete is quick, but not instant. */
const TRANSACTION = { maxWait: 10_000, timeout: 60_000 };

interface LockedGeneration {
  status: GenerationStatus;
  sourceUploadId: string | null;
  createdAt: Date;
  quality: VideoQuality;
  duration: number;
}

/** Locks the generation's row for the transaction, so a deletion, an expiry and a new extension of it take turns. */
async function lockGeneration(tx: Tx, id: string, apiKeyId?: string): Promise<LockedGeneration | null> {
  const rows = await tx.$queryRaw<LockedGeneration[]>`
    SELECT status, "sourceUploadId", "createdAt", quality, duration FROM "Generation"
     WHERE id = ${id} AND (${apiKeyId ?? null}::text IS NULL OR "apiKeyId" = ${apiKeyId ?? null}) FOR UPDATE`;
  return rows[0] ?? null;
}

/**
 * Deletes a finished generation for good: its row, its webhook attempts, its stored video and the
 * uploaded source video when no other generation uses it. A generation other generations extend
 * is refused (HasExtensionsError), so no chain loses a link. The stored objects are removed
 * before the transaction commits: if storage fails, nothing is deleted and a retry starts over.
 * What the key's limits count of it (start time, estimated cost) stays as a DeletedGeneration
 * row for two days, so deleting does not give back budget.
 */
export async function deleteGeneration(deps: CleanupDeps, apiKeyId: string, id: string): Promise<void> {
  await deps.db.$transaction(async (tx) => {
    const generation = await lockGeneration(tx, id, apiKeyId);
    if (!generation) throw new NotFoundError('Generation', id);
    if (!isTerminal(generation.status)) throw new NotDeletableError(id, generation.status);
    const extensions = await tx.generation.count({ where: { sourceId: id } });
    if (extensions > 0) throw new HasExtensionsError(id, extensions);

    const video = await tx.video.findUnique({ where: { generationId: id }, select: { storageKey: true } });
    await tx.video.deleteMany({ where: { generationId: id } });
    await tx.webhookAttempt.deleteMany({ where: { generationId: id } });
    await tx.generation.delete({ where: { id } });
    await recordTombstone(tx, apiKeyId, id, generation);
    const upload = generation.sourceUploadId ? await removeUnusedUpload(tx, generation.sourceUploadId) : null;

    for (const key of [video?.storageKey, upload?.storageKey]) if (key) await deps.storage.delete(key);
  }, TRANSACTION);
}

async function recordTombstone(tx: Tx, apiKeyId: string, id: string, generation: LockedGeneration): Promise<void> {
  const keptSince = new Date(Date.now() - TOMBSTONE_KEPT_MS);
  // Every key's, so the table holds only about two days of deletions; rows another deletion is
  // pruning are left to it (SKIP LOCKED), so concurrent deletions never wait on each other here.
  await tx.$executeRaw`
    DELETE FROM "DeletedGeneration" WHERE id IN (
      SELECT id FROM "DeletedGeneration" WHERE "createdAt" < ${keptSince} FOR UPDATE SKIP LOCKED)`;
  if (generation.createdAt < keptSince) return;
  const { createdAt, quality, duration, status } = generation;
  await tx.deletedGeneration.create({ data: { id, apiKeyId, createdAt, quality, duration, billable: status !== 'FAILED' } });
}

/** Deletes an uploaded source's row when no generation refers to it any more; returns it, for its object. */
async function removeUnusedUpload(tx: Tx, uploadId: string): Promise<{ storageKey: string } | null> {
  if ((await tx.generation.count({ where: { sourceUploadId: uploadId } })) > 0) return null;
  const upload = await tx.sourceUpload.findUnique({ where: { id: uploadId }, select: { storageKey: true } });
  if (upload) await tx.sourceUpload.delete({ where: { id: uploadId } });
  return upload;
}

export interface RetentionOptions {
  /** Stored videos of generations finished longer ago than this are removed. */
  videoDays: number;
  /** Generations (and uploads) handled per sweep; the next sweep takes the rest. */
  batch?: number;
}

/**
 * Removes the stored videos of generations that finished more than `videoDays` ago, and uploaded
 * sources whose generations all did. The generation keeps its row and history; its video becomes
 * null and videoExpiredAt says when and why. A video that a QUEUED or RUNNING generation is
 * extending is kept until that one ends (Segmind may still be fetching it). Returns how many
 * objects went.
 */
export async function removeExpiredVideos(deps: CleanupDeps, options: RetentionOptions, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - options.videoDays * DAY_MS);
  const take = options.batch ?? 100;
  const generations = await deps.db.generation.findMany({
    where: {
      status: 'SUCCEEDED',
      videoExpiredAt: null,
      completedAt: { lt: cutoff },
      video: { isNot: null },
      extensions: { none: { status: { in: [...ACTIVE_STATUSES] } } },
    },
    select: { id: true },
    orderBy: { completedAt: 'asc' },
    take,
  });
  let removed = 0;
  for (const { id } of generations) removed += (await expireVideo(deps, id, now)) ? 1 : 0;

  const uploads = await deps.db.sourceUpload.findMany({
    where: { createdAt: { lt: cutoff }, generations: { none: { OR: [{ completedAt: null }, { completedAt: { gte: cutoff } }] } } },
    select: { id: true },
    orderBy: { createdAt: 'asc' },
    take,
  });
  for (const { id } of uploads) removed += (await expireUpload(deps, id, cutoff)) ? 1 : 0;
  return removed;
}

async function expireVideo(deps: CleanupDeps, generationId: string, now: Date): Promise<boolean> {
  return deps.db.$transaction(async (tx) => {
    if (!(await lockGeneration(tx, generationId))) return false;
    const video = await tx.video.findUnique({ where: { generationId }, select: { id: true, storageKey: true } });
    if (!video) return false;
    await tx.video.delete({ where: { id: video.id } });
    await tx.generation.update({ where: { id: generationId }, data: { videoExpiredAt: now } });
    await deps.storage.delete(video.storageKey);
    return true;
  }, TRANSACTION);
}

async function expireUpload(deps: CleanupDeps, uploadId: string, cutoff: Date): Promise<boolean> {
  return deps.db.$transaction(async (tx) => {
    // Locked, and checked again under the lock: a generation may have started from it meanwhile.
    const [upload] = await tx.$queryRaw<{ storageKey: string }[]>`SELECT "storageKey" FROM "SourceUpload" WHERE id = ${uploadId} FOR UPDATE`;
    if (!upload) return false;
    const inUse = await tx.generation.count({ where: { sourceUploadId: uploadId, OR: [{ completedAt: null }, { completedAt: { gte: cutoff } }] } });
    if (inUse > 0) return false;
    await tx.sourceUpload.delete({ where: { id: uploadId } });
    await deps.storage.delete(upload.storageKey);
    return true;
  }, TRANSACTION);
}

/** Runs removeExpiredVideos every `intervalMs` in a worker process; returns its stop function. */
export function startRetentionSweep(deps: CleanupDeps & { logger: Logger }, options: RetentionOptions & { intervalMs: number }): () => Promise<void> {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    removeExpiredVideos(deps, options)
      .then((removed) => removed && deps.logger.info({ removed, videoRetentionDays: options.videoDays }, 'removed expired videos'))
      .catch((error: Error) => deps.logger.warn({ err: error.message }, 'video retention sweep failed'))
      .finally(() => (running = false));
  }, options.intervalMs);
  timer.unref();
  return async () => clearInterval(timer);
}
