/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type CreditLimit =
  /** This API key's daily budget (DAILY_BUDGET_USD) */
  | 'DAILY_BUDGET'
  /** The Segmind account's balance */
  | 'SEGMIND_BALANCE';

/** What to extend and how. Give exactly one of videoUrl, sourceGenerationId and video. */
export type ExtendVideoInput = {
  /** Absolute http(s) URL that receives the generation as signed JSON (POST) when it ends; see webhookSigningSecret */
  callbackUrl?: string | null | undefined;
  /** Seconds to add: 5 or 8. 8 needs NORMAL motion and at most Q720P. */
  duration?: number;
  /** Retrying with the same key and parameters returns the same generation and spends nothing again */
  idempotencyKey?: string | null | undefined;
  motionMode?: MotionMode;
  /** What to avoid; at most 2048 characters. Segmind's default applies when omitted. */
  negativePrompt?: string | null | undefined;
  /** What happens next. Not blank; at most 2048 characters. */
  prompt: string;
  /** Omitted means Q540P, or the source's quality when chaining (sourceGenerationId), so a chain keeps its resolution */
  quality?: VideoQuality | null | undefined;
  /** 1 to 999999, for repeatable results */
  seed?: number | null | undefined;
  /** Extend the video of one of your earlier SUCCEEDED generations (chaining) */
  sourceGenerationId?: string | number | null | undefined;
  style?: VideoStyle | null | undefined;
  /** The video itself, as a multipart upload: MP4 or MOV, at most 50 MB, 30 s and 1920 px. Stored, and fetched by Segmind from our public URL (or from S3 storage through a signed link). */
  video?: Blob | null | undefined;
  /** Absolute http(s) URL of an MP4 or MOV (at most 2048 characters, 50 MB, 30 s, 1920 px) */
  videoUrl?: string | null | undefined;
};

/** Why a generation failed, or what a RUNNING one is waiting out. A transient reason (RATE_LIMITED, UPSTREAM_UNAVAILABLE, OUTPUT_TRUNCATED, STORAGE_UNAVAILABLE...) as a failure means it was still failing at the deadline. More values may be added. */
export type GenerationErrorCode =
  /** Segmind was still working on the job at GENERATION_DEADLINE_MS, or nothing had been submitted by then */
  | 'DEADLINE_EXCEEDED'
  /** Segmind ran the job and it failed; its cost is recorded */
  | 'GENERATION_FAILED'
  /** Segmind reported insufficient credits (406) */
  | 'INSUFFICIENT_CREDITS'
  /** Segmind has retired the model (410) */
  | 'MODEL_RETIRED'
  /** The output URL answered 404 or 410 */
  | 'OUTPUT_NOT_FOUND'
  /** The output is not an MP4 */
  | 'OUTPUT_NOT_MP4'
  /** The output exceeds MAX_VIDEO_BYTES */
  | 'OUTPUT_TOO_LARGE'
  /** The download of the output was cut short, until the deadline */
  | 'OUTPUT_TRUNCATED'
  /** The download of the output could not start, until the deadline */
  | 'OUTPUT_UNREACHABLE'
  /** Segmind's rate limit (429), still reached at the deadline or reset only after it */
  | 'RATE_LIMITED'
  /** Video storage could not take the copy (a full disk, a quota, a read-only file system, an I/O error, a failed S3 upload), until the deadline */
  | 'STORAGE_UNAVAILABLE'
  /** A code this server version does not know (recorded by another version); message says what happened */
  | 'UNKNOWN'
  /** Segmind refused the request as malformed (400) */
  | 'UPSTREAM_BAD_REQUEST'
  /** The circuit breaker kept calls to Segmind off after repeated server failures, until the deadline */
  | 'UPSTREAM_CIRCUIT_OPEN'
  /** This server's Segmind account lacks permission for the model (403) */
  | 'UPSTREAM_FORBIDDEN'
  /** Segmind did not allow the HTTP method (405) */
  | 'UPSTREAM_METHOD_NOT_ALLOWED'
  /** Segmind does not know the model or the request (404; results expire after an hour) */
  | 'UPSTREAM_NOT_FOUND'
  /** An answer from Segmind that could not be read, e.g. a completed job without an output URL */
  | 'UPSTREAM_PROTOCOL'
  /** The submit may have reached Segmind but its answer was lost; it was not sent again, to avoid billing twice */
  | 'UPSTREAM_SUBMISSION_UNKNOWN'
  /** Segmind did not answer within UPSTREAM_TIMEOUT_MS, until the deadline */
  | 'UPSTREAM_TIMEOUT'
  /** Segmind refused this server's API key (401): an operator must fix SEGMIND_API_KEY */
  | 'UPSTREAM_UNAUTHORIZED'
  /** Segmind answered with a server error (5xx) until the deadline */
  | 'UPSTREAM_UNAVAILABLE'
  /** No connection to Segmind, until the deadline */
  | 'UPSTREAM_UNREACHABLE'
  /** Segmind refused the parameters (422) */
  | 'UPSTREAM_VALIDATION';

export type GenerationStatus =
  /** Canceled before it finished. */
  | 'CANCELED'
  /** Ended without a video; see error. */
  | 'FAILED'
  /** Accepted and waiting to be submitted to Segmind. */
  | 'QUEUED'
  /** Submitted; Segmind is queueing or generating it, or extendql is copying the MP4. */
  | 'RUNNING'
  /** The MP4 is stored and can be downloaded from video.url. */
  | 'SUCCEEDED';

/** Amount of motion. FAST allows only 5-second generations and no Q1080P. */
export type MotionMode =
  /** "fast" upstream */
  | 'FAST'
  /** "normal" upstream */
  | 'NORMAL';

export type RateLimit =
  /** Generations QUEUED or RUNNING at once (MAX_CONCURRENT_PER_KEY) */
  | 'CONCURRENT_GENERATIONS'
  /** Generations started per rolling minute (RATE_LIMIT_PER_MINUTE) */
  | 'REQUESTS_PER_MINUTE';

/** Output resolution. Q1080P allows only 5-second, NORMAL-motion generations. */
export type VideoQuality =
  /** 360p: 640x360 for 16:9 sources (the source's aspect ratio is kept) */
  | 'Q360P'
  /** 540p: 960x540 for 16:9 sources (the source's aspect ratio is kept) */
  | 'Q540P'
  /** 720p: 1280x720 for 16:9 sources (the source's aspect ratio is kept) */
  | 'Q720P'
  /** 1080p: 1920x1080 for 16:9 sources (the source's aspect ratio is kept) */
  | 'Q1080P';

/** Visual style. Passed through to PixVerse, which applies it only on its v3.5 model. */
export type VideoStyle =
  /** "anime" upstream */
  | 'ANIME'
  /** "clay" upstream */
  | 'CLAY'
  /** "comic" upstream */
  | 'COMIC'
  /** "cyberpunk" upstream */
  | 'CYBERPUNK'
  /** "3d_animation" upstream */
  | 'THREE_D_ANIMATION';

export type GenerationStateFragment = { id: string, status: GenerationStatus, upstreamStatus: string | null, elapsedSeconds: number, prompt: string, duration: number, quality: VideoQuality, motionMode: MotionMode, createdAt: string, completedAt: string | null, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, error: { code: GenerationErrorCode, message: string, upstreamStatus: number | null } | null, video: { url: string, contentType: string, byteSize: number, width: number, height: number, durationSeconds: number, sha256: string } | null };

export type CliExtendVideoMutationVariables = Exact<{
  input: ExtendVideoInput;
}>;


export type CliExtendVideoMutation = { extendVideo:
    | { __typename: 'ExtendVideoSuccess', generation: { id: string, status: GenerationStatus, upstreamStatus: string | null, elapsedSeconds: number, prompt: string, duration: number, quality: VideoQuality, motionMode: MotionMode, createdAt: string, completedAt: string | null, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, error: { code: GenerationErrorCode, message: string, upstreamStatus: number | null } | null, video: { url: string, contentType: string, byteSize: number, width: number, height: number, durationSeconds: number, sha256: string } | null } }
    | { __typename: 'IdempotencyConflictError', message: string, idempotencyKey: string }
    | { __typename: 'InsufficientCreditsError', message: string, requiredUsd: number, availableUsd: number | null, creditLimit: CreditLimit }
    | { __typename: 'InvalidInputError', message: string, fields: Array<{ path: Array<string>, message: string }> }
    | { __typename: 'NotFoundError', message: string, id: string }
    | { __typename: 'RateLimitedError', message: string, rateLimit: RateLimit, max: number, retryAfterSeconds: number }
   };

export type CliGenerationUpdatedSubscriptionVariables = Exact<{
  id: string | number;
}>;


export type CliGenerationUpdatedSubscription = { generationUpdated: { id: string, status: GenerationStatus, upstreamStatus: string | null, elapsedSeconds: number, prompt: string, duration: number, quality: VideoQuality, motionMode: MotionMode, createdAt: string, completedAt: string | null, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, error: { code: GenerationErrorCode, message: string, upstreamStatus: number | null } | null, video: { url: string, contentType: string, byteSize: number, width: number, height: number, durationSeconds: number, sha256: string } | null } };

export type CliHistoryQueryVariables = Exact<{
  first: number;
  after?: string | null | undefined;
  status?: GenerationStatus | null | undefined;
}>;


export type CliHistoryQuery = { generations: { totalCount: number, edges: Array<{ node: { id: string, status: GenerationStatus, duration: number, quality: VideoQuality, createdAt: string, prompt: string, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, video: { url: string, byteSize: number, sha256: string } | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type CliGenerationQueryVariables = Exact<{
  id: string | number;
}>;


export type CliGenerationQuery = { generation: { id: string, status: GenerationStatus, upstreamStatus: string | null, elapsedSeconds: number, prompt: string, duration: number, quality: VideoQuality, motionMode: MotionMode, createdAt: string, completedAt: string | null, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, error: { code: GenerationErrorCode, message: string, upstreamStatus: number | null } | null, video: { url: string, contentType: string, byteSize: number, width: number, height: number, durationSeconds: number, sha256: string } | null } | null };

export type CliCancelGenerationMutationVariables = Exact<{
  id: string | number;
}>;


export type CliCancelGenerationMutation = { cancelGeneration:
    | { __typename: 'CancelGenerationSuccess', generation: { id: string, status: GenerationStatus, upstreamStatus: string | null, elapsedSeconds: number, prompt: string, duration: number, quality: VideoQuality, motionMode: MotionMode, createdAt: string, completedAt: string | null, cost: number | null, estimatedCost: number, videoExpiredAt: string | null, error: { code: GenerationErrorCode, message: string, upstreamStatus: number | null } | null, video: { url: string, contentType: string, byteSize: number, width: number, height: number, durationSeconds: number, sha256: string } | null } }
    | { __typename: 'NotCancelableError', message: string, id: string, status: GenerationStatus }
    | { __typename: 'NotFoundError', message: string, id: string }
   };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const GenerationStateFragmentDoc = new TypedDocumentString(`
    fragment GenerationState on Generation {
  id
  status
  upstreamStatus
  elapsedSeconds
  prompt
  duration
  quality
  motionMode
  createdAt
  completedAt
  cost
  estimatedCost
  error {
    code
    message
    upstreamStatus
  }
  video {
    url
    contentType
    byteSize
    width
    height
    durationSeconds
    sha256
  }
  videoExpiredAt
}
    `, {"fragmentName":"GenerationState"}) as unknown as TypedDocumentString<GenerationStateFragment, unknown>;
export const CliExtendVideoDocument = new TypedDocumentString(`
    mutation CliExtendVideo($input: ExtendVideoInput!) {
  extendVideo(input: $input) {
    __typename
    ... on ExtendVideoSuccess {
      generation {
        ...GenerationState
      }
    }
    ... on Error {
      message
    }
    ... on InvalidInputError {
      fields {
        path
        message
      }
    }
    ... on NotFoundError {
      id
    }
    ... on RateLimitedError {
      rateLimit
      max
      retryAfterSeconds
    }
    ... on InsufficientCreditsError {
      requiredUsd
      availableUsd
      creditLimit
    }
    ... on IdempotencyConflictError {
      idempotencyKey
    }
  }
}
    fragment GenerationState on Generation {
  id
  status
  upstreamStatus
  elapsedSeconds
  prompt
  duration
  quality
  motionMode
  createdAt
  completedAt
  cost
  estimatedCost
  error {
    code
    message
    upstreamStatus
  }
  video {
    url
    contentType
    byteSize
    width
    height
    durationSeconds
    sha256
  }
  videoExpiredAt
}`, {"hash":"sha256:3329f76e51ced55d4e11a801af44f8db17111b7802c2d53cc4b68ed0cd8ac555"}) as unknown as TypedDocumentString<CliExtendVideoMutation, CliExtendVideoMutationVariables>;
export const CliGenerationUpdatedDocument = new TypedDocumentString(`
    subscription CliGenerationUpdated($id: ID!) {
  generationUpdated(id: $id) {
    ...GenerationState
  }
}
    fragment GenerationState on Generation {
  id
  status
  upstreamStatus
  elapsedSeconds
  prompt
  duration
  quality
  motionMode
  createdAt
  completedAt
  cost
  estimatedCost
  error {
    code
    message
    upstreamStatus
  }
  video {
    url
    contentType
    byteSize
    width
    height
    durationSeconds
    sha256
  }
  videoExpiredAt
}`, {"hash":"sha256:844eaf89c7674c65723b04dca6c40b20781b6e853f5099106790ad66d71dae03"}) as unknown as TypedDocumentString<CliGenerationUpdatedSubscription, CliGenerationUpdatedSubscriptionVariables>;
export const CliHistoryDocument = new TypedDocumentString(`
    query CliHistory($first: Int!, $after: String, $status: GenerationStatus) {
  generations(first: $first, after: $after, status: $status) {
    totalCount
    edges {
      node {
        id
        status
        duration
        quality
        createdAt
        prompt
        cost
        estimatedCost
        video {
          url
          byteSize
          sha256
        }
        videoExpiredAt
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `, {"hash":"sha256:dc9ce71dbbf22300a6e3ec0e7ff018a7f64da16939ffcbdc041a35df667eb60f"}) as unknown as TypedDocumentString<CliHistoryQuery, CliHistoryQueryVariables>;
export const CliGenerationDocument = new TypedDocumentString(`
    query CliGeneration($id: ID!) {
  generation(id: $id) {
    ...GenerationState
  }
}
    fragment GenerationState on Generation {
  id
  status
  upstreamStatus
  elapsedSeconds
  prompt
  duration
  quality
  motionMode
  createdAt
  completedAt
  cost
  estimatedCost
  error {
    code
    message
    upstreamStatus
  }
  video {
    url
    contentType
    byteSize
    width
    height
    durationSeconds
    sha256
  }
  videoExpiredAt
}`, {"hash":"sha256:21d593507e12266d96dbe6246bab561ad5efb58793b9d28cde08d5c5174a1939"}) as unknown as TypedDocumentString<CliGenerationQuery, CliGenerationQueryVariables>;
export const CliCancelGenerationDocument = new TypedDocumentString(`
    mutation CliCancelGeneration($id: ID!) {
  cancelGeneration(id: $id) {
    __typename
    ... on CancelGenerationSuccess {
      generation {
        ...GenerationState
      }
    }
    ... on Error {
      message
    }
    ... on NotCancelableError {
      id
      status
    }
    ... on NotFoundError {
      id
    }
  }
}
    fragment GenerationState on Generation {
  id
  status
  upstreamStatus
  elapsedSeconds
  prompt
  duration
  quality
  motionMode
  createdAt
  completedAt
  cost
  estimatedCost
  error {
    code
    message
    upstreamStatus
  }
  video {
    url
    contentType
    byteSize
    width
    height
    durationSeconds
    sha256
  }
  videoExpiredAt
}`, {"hash":"sha256:874594decdb496c3104dea7f837838bfc8dbbfbfa53a82fb55037e8bc2c9f3e5"}) as unknown as TypedDocumentString<CliCancelGenerationMutation, CliCancelGenerationMutationVariables>;