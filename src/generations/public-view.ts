import type { Generation, Video } from '../generated/prisma/client.ts';
import { knownErrorCode } from './lifecycle.ts';

/*
 * How a generation's stored columns are shown to clients, wherever they see it: the GraphQL
 * Generation type and the webhook payload both map through these, so the two cannot drift.
 */

export type PublicErrorCode = ReturnType<typeof knownErrorCode>;

export interface PublicError {
  code: PublicErrorCode;
  message: string;
  upstreamStatus: number | null;
}

export interface PublicRetry {
  code: PublicErrorCode;
  message: string;
  retryAt: Date;
}

export function publicError(generation: Pick<Generation, 'errorCode' | 'errorMessage' | 'errorUpstreamStatus'>): PublicError | null {
  const { errorCode: code } = generation;
  return code ? { code: knownErrorCode(code), message: generation.errorMessage ?? code, upstreamStatus: generation.errorUpstreamStatus } : null;
}

export function publicRetry(generation: Pick<Generation, 'retryCode' | 'retryMessage' | 'retryAt'>): PublicRetry | null {
  const { retryCode: code, retryAt } = generation;
  return code && retryAt ? { code: knownErrorCode(code), message: generation.retryMessage ?? code, retryAt } : null;
}

/** USD as Segmind reported it; null until then. */
export function publicCost(generation: Pick<Generation, 'cost'>): number | null {
  return generation.cost === null ? null : Number(generation.cost);
}

/** The stored MP4's public fields; `url` is its absolute download URL. */
export function publicVideo(video: Pick<Video, (typeof VIDEO_FIELDS)[number]>, url: string) {
  const { contentType, byteSize, width, height, durationSeconds, sha256 } = video;
  return { url, contentType, byteSize, width, height, durationSeconds, sha256 };
}

/** The Video columns clients see (the GraphQL Video type exposes the same). */
export const VIDEO_FIELDS = ['contentType', 'byteSize', 'width', 'height', 'durationSeconds', 'sha256'] as const;
