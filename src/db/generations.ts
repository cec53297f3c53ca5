import type pg from 'pg';
import type { Generation } from '../generated/prisma/client.ts';
import { ACTIVE_STATUSES } from '../generations/lifecycle.ts';
import { prismaTypes, timestampParam } from './sql.ts';

// The Generation statements that run for every generation: its insert (with an uploaded source),
// and the steps that follow (read the row, claim the submission, record the request_id, each
// poll, Segmind's COMPLETED, the success with its video). They go to `pg` as named statements on
// the pool Prisma shares: one round trip each, and no query plan compiled per call (Prisma's
// compilation allocated about 100 kB per call, the largest share of the worker's garbage; see
// BENCHMARKS.md, scenario 4). The rarer writes (failures, retries, cancel) stay with Prisma.
// test/generation-steps.test.ts checks rows and writes against Prisma's own.
//
// Timestamps are sent as UTC text (`timestampParam`), and `updatedAt` is written here as Prisma's
// `@updatedAt` would be.

/**
 * Every field of the Prisma model, so a row is what Prisma would have returned. Listed rather
 * than `*` (see src/db/sql.ts); as a Record, it stops compiling when the model gains or loses a field.
 */
export const GENERATION_FIELDS: Record<keyof Generation, true> = {
  id: true, apiKeyId: true, status: true, prompt: true, negativePrompt: true, duration: true, quality: true, motionMode: true,
  seed: true, style: true, sourceVideoUrl: true, sourceId: true, sourceUploadId: true, callbackUrl: true, webhookScheduledAt: true,
  idempotencyKey: true, paramsHash: true, plannedVideoId: true, submitStartedAt: true, upstreamRequestId: true, upstreamStatus: true,
  pollCount: true, retryCount: true, retryCode: true, retryMessage: true, retryAt: true, errorCode: true, errorMessage: true, errorUpstreamStatus: true, cost: true, createdAt: true,
  updatedAt: true, startedAt: true, completedAt: true, videoExpiredAt: true,
};
const COLUMNS = Object.keys(GENERATION_FIELDS).map((field) => `"${field}"`).join(', ');

const INSERT_UPLOAD = `INSERT INTO "SourceUpload" ("id", "apiKeyId", "storageKey", "contentType", "sha256", "byteSize", "width", "height", "durationSeconds", "createdAt")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamp)`;

export interface NewUploadRow {
  id: string;
  apiKeyId: string;
  storageKey: string;
  contentType: string;
  sha256: string;
  byteSize: number;
  width: number;
  height: number;
  durationSeconds: number;
}

/** Inserts an uploaded source's row (on the connection of the transaction that records its generation). */
export async function insertUpload(client: pg.ClientBase, row: NewUploadRow, now: Date): Promise<void> {
  const { id, apiKeyId, storageKey, contentType, sha256, byteSize, width, height, durationSeconds } = row;
  const values = [id, apiKeyId, storageKey, contentType, sha256, byteSize, width, height, durationSeconds, timestampParam(now)];
  await client.query({ name: 'extendql_insert_upload', text: INSERT_UPLOAD, values });
}

const INSERT_GENERATION = `INSERT INTO "Generation" ("id", "apiKeyId", "prompt", "negativePrompt", "duration", "quality", "motionMode", "seed", "style",
    "sourceVideoUrl", "sourceId", "sourceUploadId", "callbackUrl", "idempotencyKey", "paramsHash", "plannedVideoId", "createdAt", "updatedAt")
  VALUES ($1, $2, $3, $4, $5, $6::"VideoQuality", $7::"MotionMode", $8, $9::"VideoStyle", $10, $11, $12, $13, $14, $15, $16, $17::timestamp, $17::timestamp)
  RETURNING ${COLUMNS}`;

/** The fields a new generation is recorded with; the rest take their defaults. */
export type NewGenerationRow = Pick<
  Generation,
  | 'id' | 'apiKeyId' | 'prompt' | 'negativePrompt' | 'duration' | 'quality' | 'motionMode' | 'seed' | 'style'
  | 'sourceVideoUrl' | 'sourceId' | 'sourceUploadId' | 'callbackUrl' | 'idempotencyKey' | 'paramsHash' | 'plannedVideoId'
>;

/** Inserts a QUEUED generation and answers its row as `db.generation.create` would. */
export async function insertGeneration(client: pg.ClientBase, row: NewGenerationRow, now: Date): Promise<Generation> {
  const values = [
    row.id, row.apiKeyId, row.prompt, row.negativePrompt, row.duration, row.quality, row.motionMode, row.seed, row.style,
    row.sourceVideoUrl, row.sourceId, row.sourceUploadId, row.callbackUrl, row.idempotencyKey, row.paramsHash, row.plannedVideoId,
    timestampParam(now),
  ];
  const { rows } = await client.query<Generation>({ name: 'extendql_insert_generation', text: INSERT_GENERATION, values, types: prismaTypes });
  return rows[0]!;
}

const ACTIVE = ACTIVE_STATUSES.map((status) => `'${status}'`).join(', ');
const NOT_RETRYING = '"retryCount" = 0, "retryCode" = NULL, "retryMessage" = NULL, "retryAt" = NULL';

const READ = `SELECT ${COLUMNS} FROM "Generation" WHERE "id" = $1`;

/** The generation's row exactly as `db.generation.findUnique` returns it (dates and Decimal alike), or null. */
export async function readGeneration(pool: pg.Pool, id: string): Promise<Generation | null> {
  const { rows } = await pool.query<Generation>({ name: 'extendql_generation_read', text: READ, values: [id], types: prismaTypes });
  return rows[0] ?? null;
}

const READ_OWN = `SELECT ${COLUMNS} FROM "Generation" WHERE "id" = $1 AND "apiKeyId" = $2`;

/**
 * A key's generation as `db.generation.findUnique({ where: { id, apiKeyId } })` returns it, or
 * null (another key's, or none): what `generation(id:)` and subscriptions read on every call.
 */
export async function readOwnGeneration(pool: pg.Pool, apiKeyId: string, id: string): Promise<Generation | null> {
  const { rows } = await pool.query<Generation>({ name: 'extendql_generation_read_own', text: READ_OWN, values: [id, apiKeyId], types: prismaTypes });
  return rows[0] ?? null;
}

const CLAIM = `UPDATE "Generation"
  SET "status" = 'RUNNING', "submitStartedAt" = $2, "startedAt" = COALESCE("startedAt", $2), "updatedAt" = $2
  WHERE "id" = $1 AND "status" IN (${ACTIVE}) AND "submitStartedAt" IS NULL AND "upstreamRequestId" IS NULL`;

/**
 * Claims the submission of an unfinished generation that has none begun: only one step anywhere
 * can win it. True when this one did.
 */
export async function claimSubmission(pool: pg.Pool, id: string, now = new Date()): Promise<boolean> {
  const { rowCount } = await pool.query({ name: 'extendql_generation_claim', text: CLAIM, values: [id, timestampParam(now)] });
  return rowCount === 1;
}

const RECORD_REQUEST_ID = `UPDATE "Generation"
  SET "upstreamRequestId" = $2, "upstreamStatus" = $3, ${NOT_RETRYING}, "updatedAt" = $4
  WHERE "id" = $1`;

/** Records the request_id (and status) Segmind gave an accepted submission. */
export async function recordRequestId(pool: pg.Pool, id: string, requestId: string, upstreamStatus: string, now = new Date()): Promise<void> {
  await pool.query({ name: 'extendql_generation_request_id', text: RECORD_REQUEST_ID, values: [id, requestId, upstreamStatus, timestampParam(now)] });
}

const RECORD_POLL = `UPDATE "Generation"
  SET "upstreamStatus" = $2, "pollCount" = "pollCount" + 1, ${NOT_RETRYING}, "updatedAt" = $3
  WHERE "id" = $1`;

/** Records a poll that found the job still QUEUED or PROCESSING: its status, one more poll, nothing waiting on a retry. */
export async function recordPoll(pool: pg.Pool, id: string, upstreamStatus: string, now = new Date()): Promise<void> {
  await pool.query({ name: 'extendql_generation_poll', text: RECORD_POLL, values: [id, upstreamStatus, timestampParam(now)] });
}

const RECORD_UPSTREAM = 'UPDATE "Generation" SET "upstreamStatus" = $2, "updatedAt" = $3 WHERE "id" = $1';

/** Records Segmind's status of the job (e.g. COMPLETED, before its output is copied). */
export async function recordUpstreamStatus(pool: pg.Pool, id: string, upstreamStatus: string, now = new Date()): Promise<void> {
  await pool.query({ name: 'extendql_generation_upstream', text: RECORD_UPSTREAM, values: [id, upstreamStatus, timestampParam(now)] });
}

export interface StoredVideo {
  id: string;
  storageKey: string;
  contentType: string;
  byteSize: number;
  width: number;
  height: number;
  durationSeconds: number;
  sha256: string;
}

// One statement, so both rows change or neither: the generation ends SUCCEEDED only while it is
// still RUNNING, and its video row is inserted only then.
const SUCCEED = `WITH ended AS (
    UPDATE "Generation"
    SET "status" = 'SUCCEEDED', "upstreamStatus" = 'COMPLETED', "completedAt" = $2, ${NOT_RETRYING},
        "cost" = COALESCE($3::numeric, "cost"), "updatedAt" = $2
    WHERE "id" = $1 AND "status" = 'RUNNING'
    RETURNING "id"
  )
  INSERT INTO "Video" ("id", "generationId", "storageKey", "contentType", "byteSize", "width", "height", "durationSeconds", "sha256", "createdAt")
  SELECT $4, "id", $5, $6, $7, $8, $9, $10, $11, $2 FROM ended
  RETURNING "id"`;

/**
 * Ends a RUNNING generation SUCCEEDED with its stored video (and Segmind's cost, when given).
 * False when the generation was no longer RUNNING: nothing was written.
 */
export async function recordSuccess(pool: pg.Pool, generationId: string, video: StoredVideo, cost: number | undefined, now = new Date()): Promise<boolean> {
  const values = [
    generationId,
    timestampParam(now),
    cost === undefined ? null : String(cost),
    video.id,
    video.storageKey,
    video.contentType,
    video.byteSize,
    video.width,
    video.height,
    video.durationSeconds,
    video.sha256,
  ];
  const { rowCount } = await pool.query({ name: 'extendql_generation_succeed', text: SUCCEED, values });
  return rowCount === 1;
}
