import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import type { Generation } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { urlHostScope } from '../net/host-scope.ts';
import type { VideoStorage } from '../storage/storage.ts';

/*
 * Which URL Segmind fetches when a generation extends one of our own videos (chaining) or an
 * upload. Segmind fetches it itself, from the internet.
 *
 * - Local storage: the video's URL under PUBLIC_BASE_URL, served by /videos/. It is recorded at
 *   accept time in `sourceVideoUrl` and sent as is.
 * - S3 storage: a presigned GET URL for the object in the bucket, made by the worker just before
 *   the submit, from the stored reference (sourceId / sourceUploadId). Made then rather than at
 *   accept time, a generation that waits in the queue cannot hand Segmind an expired link.
 *
 * The presigned URL is never stored and never shown: `sourceVideoUrl` (GraphQL, webhooks) keeps
 * the /videos/ URL, which serves the same bytes to the client. A presigned URL names this
 * server's S3 access key id, bucket and endpoint, and is a bearer link to the object that this
 * server can no longer refuse or shorten once it is out: up to 7 days for anyone it reaches,
 * webhook receivers and logs included. Segmind needs it for one fetch; nobody else needs it.
 */

/** SigV4 presigned URLs cannot last longer (S3 refuses X-Amz-Expires above a week). */
export const PRESIGN_MAX_SECONDS = 7 * 24 * 60 * 60;
/** Never shorter, however short the deadline: Segmind may fetch the source late in its queue. */
export const PRESIGN_MIN_SECONDS = 60 * 60;

/** How long a source link lasts: the generation's deadline, at least an hour, at most 7 days. */
export function presignSeconds(deadlineMs: number): { seconds: number; capped: boolean } {
  const wanted = Math.max(PRESIGN_MIN_SECONDS, Math.ceil(deadlineMs / 1000));
  return { seconds: Math.min(wanted, PRESIGN_MAX_SECONDS), capped: wanted > PRESIGN_MAX_SECONDS };
}

type SourceOf = Pick<Generation, 'id' | 'sourceVideoUrl' | 'sourceId' | 'sourceUploadId'>;

/** The storage key of a chained or uploaded source, or null for a client's own videoUrl. */
async function sourceKey(db: Db, generation: SourceOf): Promise<string | null> {
  const select = { storageKey: true } as const;
  if (generation.sourceUploadId) return (await db.sourceUpload.findUnique({ where: { id: generation.sourceUploadId }, select }))?.storageKey ?? null;
  if (generation.sourceId) return (await db.video.findUnique({ where: { generationId: generation.sourceId }, select }))?.storageKey ?? null;
  return null;
}

/**
 * What the worker sends Segmind as `video_url`, or undefined when the storage has no presigned
 * URLs (then the recorded `sourceVideoUrl` is sent).
 */
export function submitSourceUrls(deps: {
  db: Db;
  storage: VideoStorage;
  deadlineMs: number;
  logger: Logger;
}): ((generation: SourceOf) => Promise<string>) | undefined {
  const { db, storage, logger } = deps;
  if (!storage.presignedGetUrl) return undefined;
  const { seconds, capped } = presignSeconds(deps.deadlineMs);
  if (capped) {
    logger.warn(
      { deadlineMs: deps.deadlineMs, presignSeconds: seconds },
      'GENERATION_DEADLINE_MS is longer than 7 days, the most an S3 presigned URL can last: the source links given to Segmind expire after 7 days',
    );
  }
  return async (generation) => {
    const key = await sourceKey(db, generation);
    return key ? storage.presignedGetUrl!(key, seconds) : generation.sourceVideoUrl;
  };
}

export interface SourceReachProblem {
  /** For clients: names the fix, without this server's internal addresses. */
  message: string;
  /** For the operator's log. */
  detail: string;
}

/**
 * Whether Segmind can fetch the URLs we give it for chained and uploaded sources. It cannot when
 * it is on the internet and they point at a loopback, private or link-local host. A Segmind URL
 * that is itself local (the simulator, a fake, a proxy) can reach such hosts, so then anything goes.
 */
export function sourceReachProblem(config: Pick<Config, 's3'>, segmindUrl: string, publicBaseUrl: string): SourceReachProblem | null {
  if (urlHostScope(segmindUrl) !== 'public') return null;
  const segmind = new URL(segmindUrl).origin;
  if (config.s3) {
    // Unset: AWS S3 itself, which is public.
    if (!config.s3.endpoint) return null;
    const scope = urlHostScope(config.s3.endpoint);
    if (scope === 'public') return null;
    return {
      message:
        "Segmind cannot fetch chained or uploaded videos from this server's object storage, which is not reachable from the internet. " +
        'The operator must set S3_ENDPOINT to an endpoint Segmind can reach. A videoUrl of your own still works.',
      detail: `S3_ENDPOINT (${new URL(config.s3.endpoint).origin}) is a ${scope} address that Segmind (${segmind}) cannot reach: chained and uploaded generations are refused. Set S3_ENDPOINT to an endpoint reachable from the internet.`,
    };
  }
  const scope = urlHostScope(publicBaseUrl);
  if (scope === 'public') return null;
  return {
    message:
      "Segmind cannot fetch chained or uploaded videos from this server: its public URL is not reachable from the internet. The operator must set PUBLIC_BASE_URL to a public origin (a tunnel will do) or configure S3 storage. A videoUrl of your own still works.",
    detail: `PUBLIC_BASE_URL (${new URL(publicBaseUrl).origin}) is a ${scope} address that Segmind (${segmind}) cannot fetch from: chained and uploaded generations are refused. Set PUBLIC_BASE_URL to a public origin (a tunnel will do) or configure S3 storage (S3_BUCKET).`,
  };
}
