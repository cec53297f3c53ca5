import type { GenerationStatus } from '../generated/prisma/client.ts';
import { DownloadError, type DownloadErrorCode } from '../storage/download.ts';
import { StorageError } from '../storage/storage.ts';
import { UpstreamError, type UpstreamErrorCode } from '../upstream/segmind.ts';

/*
 * A generation's lifecycle: its states, and what decides each move.
 *
 *   QUEUED ──claim──▶ RUNNING ──submit──▶ request_id saved ──poll──▶ COMPLETED ──copy──▶ SUCCEEDED
 *     │                 │ (submitStartedAt)     │                      │
 *     │                 │                       ├─ Segmind says FAILED ──────────────▶ FAILED GENERATION_FAILED
 *     │                 │                       └─ still QUEUED/PROCESSING at the deadline ▶ FAILED DEADLINE_EXCEEDED
 *     │                 └─ answer lost, request_id unknown ─────────────────────────▶ FAILED UPSTREAM_SUBMISSION_UNKNOWN
 *     └─ cancelGeneration (from QUEUED or RUNNING) ─────────────────────────────────▶ CANCELED
 *
 * A step that fails is judged here: a permanent failure ends the generation at once; a transient
 * one (429, 5xx, timeouts, a download cut short, storage that cannot take a write, a submit that
 * certainly never reached Segmind) waits with capped backoff and jitter, visibly (the `retry*`
 * columns), for as long as the generation's deadline allows. Once Segmind has a request_id, the
 * deadline only stops the waiting: every step first asks Segmind, so a finished (billed) job is
 * always collected and a failed one always recorded.
 */

/** Where a generation ends: it never leaves these (only deleteGeneration removes it). */
export const TERMINAL_STATUSES = ['SUCCEEDED', 'FAILED', 'CANCELED'] as const satisfies readonly GenerationStatus[];

/** In flight: counted against MAX_CONCURRENT_PER_KEY, cancelable, not deletable. */
export const ACTIVE_STATUSES = ['QUEUED', 'RUNNING'] as const satisfies readonly GenerationStatus[];

export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export function isTerminal(status: string): status is TerminalStatus {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export type StepError = UpstreamError | DownloadError | StorageError;

/** Every code a generation's error (or its retrying) can carry: the steps' own, and the lifecycle's. */
export type GenerationErrorCode =
  | UpstreamErrorCode
  | DownloadErrorCode
  | StorageError['code']
  | 'UPSTREAM_SUBMISSION_UNKNOWN'
  | 'GENERATION_FAILED'
  | 'DEADLINE_EXCEEDED';

/**
 * What each code means. A record over the union above: a new code in any of its parts fails to
 * compile until it is described here, and so reaches the API's GenerationErrorCode enum.
 */
export const GENERATION_ERROR_CODES: Record<GenerationErrorCode, string> = {
  GENERATION_FAILED: 'Segmind ran the job and it failed; its cost is recorded',
  INSUFFICIENT_CREDITS: "Segmind reported insufficient credits (406)",
  UPSTREAM_VALIDATION: 'Segmind refused the parameters (422)',
  UPSTREAM_UNAUTHORIZED: "Segmind refused this server's API key (401): an operator must fix SEGMIND_API_KEY",
  UPSTREAM_FORBIDDEN: "This server's Segmind account lacks permission for the model (403)",
  UPSTREAM_NOT_FOUND: 'Segmind does not know the model or the request (404; results expire after an hour)',
  UPSTREAM_BAD_REQUEST: 'Segmind refused the request as malformed (400)',
  UPSTREAM_METHOD_NOT_ALLOWED: 'Segmind did not allow the HTTP method (405)',
  MODEL_RETIRED: 'Segmind has retired the model (410)',
  UPSTREAM_PROTOCOL: 'An answer from Segmind that could not be read, e.g. a completed job without an output URL',
  UPSTREAM_SUBMISSION_UNKNOWN: 'The submit may have reached Segmind but its answer was lost; it was not sent again, to avoid billing twice',
  RATE_LIMITED: "Segmind's rate limit (429), still reached at the deadline or reset only after it",
  UPSTREAM_UNAVAILABLE: 'Segmind answered with a server error (5xx) until the deadline',
  UPSTREAM_TIMEOUT: 'Segmind did not answer within UPSTREAM_TIMEOUT_MS, until the deadline',
  UPSTREAM_UNREACHABLE: 'No connection to Segmind, until the deadline',
  UPSTREAM_CIRCUIT_OPEN: 'The circuit breaker kept calls to Segmind off after repeated server failures, until the deadline',
  OUTPUT_NOT_FOUND: 'The output URL answered 404 or 410',
  OUTPUT_NOT_MP4: 'The output is not an MP4',
  OUTPUT_TOO_LARGE: 'The output exceeds MAX_VIDEO_BYTES',
  OUTPUT_TRUNCATED: 'The download of the output was cut short, until the deadline',
  OUTPUT_UNREACHABLE: 'The download of the output could not start, until the deadline',
  STORAGE_UNAVAILABLE: 'Video storage could not take the copy (a full disk, a quota, a read-only file system, an I/O error, a failed S3 upload), until the deadline',
  DEADLINE_EXCEEDED: 'Segmind was still working on the job at GENERATION_DEADLINE_MS, or nothing had been submitted by then',
};

/** What a stored code that is not (or no longer) one of GENERATION_ERROR_CODES is shown as. */
export const UNKNOWN_ERROR_CODE = 'UNKNOWN';

/** A stored error or retry code as clients see it: one of the known codes, else UNKNOWN (an old row's). */
export function knownErrorCode(code: string): GenerationErrorCode | typeof UNKNOWN_ERROR_CODE {
  return Object.hasOwn(GENERATION_ERROR_CODES, code) ? (code as GenerationErrorCode) : UNKNOWN_ERROR_CODE;
}

export interface StepFailure {
  code: GenerationErrorCode;
  message: string;
  /** Segmind's (or the output origin's) HTTP status, when it gave one. */
  upstreamStatus?: number;
}

export type Verdict =
  /** Try again, not before `notBefore` when the upstream named a time (a rate-limit reset, an open circuit). */
  | { retry: true; failure: StepFailure; notBefore?: Date }
  | { retry: false; failure: StepFailure };

/** The failures a step knows how to judge; anything else (a database error, a bug) is thrown to the queue. */
export function isStepError(error: unknown): error is StepError {
  return error instanceof UpstreamError || error instanceof DownloadError || error instanceof StorageError;
}

/** Whether a failed step can be tried again, and what it is called if it ends the generation. */
export function judge(error: StepError, submitting: boolean): Verdict {
  if (error instanceof StorageError) return { retry: true, failure: { code: error.code, message: error.message } };
  if (error instanceof DownloadError) {
    const retry = error.code === 'OUTPUT_TRUNCATED' || error.code === 'OUTPUT_UNREACHABLE';
    return { retry, failure: { code: error.code, message: error.message, upstreamStatus: error.httpStatus } };
  }
  const failure = { code: error.code, message: error.message, upstreamStatus: error.status };
  // A POST that may have reached Segmind is never sent again: it may be a billed job.
  if (submitting && !error.options.certainlyNotReceived) {
    return {
      retry: false,
      failure: {
        ...failure,
        code: 'UPSTREAM_SUBMISSION_UNKNOWN',
        message: `${error.message}. The request may have reached Segmind, so it was not sent again, to avoid billing twice`,
      },
    };
  }
  return error.retryable ? { retry: true, failure, notBefore: error.options.retryAt } : { retry: false, failure };
}

/** Capped exponential backoff with full jitter on the upper half, so retries don't stampede. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, factor = 2): number {
  const ceiling = Math.min(maxMs, baseMs * factor ** Math.min(attempt, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** The longest wait between two tries of a failing step. */
export const MAX_BACKOFF_MS = 60_000;

/** Backoff is capped at a tenth of the deadline too, so a short deadline still gets about ten tries. */
export const maxBackoffMs = (deadlineMs: number, baseMs: number) => Math.min(MAX_BACKOFF_MS, Math.max(baseMs, deadlineMs / 10));

export type RetryPlan = { wait: true; afterMs: number; at: Date } | { wait: false; failure: StepFailure };

/**
 * When to try again after a transient failure, or the truthful failure when no try can come
 * before the deadline: the last transient reason, saying that the deadline ended the waiting.
 */
export function planRetry(
  verdict: Extract<Verdict, { retry: true }>,
  attempt: number,
  deadlineAt: Date,
  backoff: { baseMs: number; maxMs: number },
  now = Date.now(),
): RetryPlan {
  const { failure, notBefore } = verdict;
  const deadline = deadlineAt.toISOString();
  if (notBefore && notBefore.getTime() > deadlineAt.getTime()) {
    const message =
      failure.code === 'RATE_LIMITED'
        ? `Segmind's rate limit resets at ${notBefore.toISOString()}, after this generation's deadline (${deadline})`
        : `${failure.message}; the next try (at ${notBefore.toISOString()}) would come after this generation's deadline (${deadline})`;
    return { wait: false, failure: { ...failure, message } };
  }
  if (now >= deadlineAt.getTime()) return { wait: false, failure: atDeadline(failure, deadline) };
  // A reset time is waited out, plus up to a second of jitter so waiting steps don't return together.
  const untilReset = notBefore ? notBefore.getTime() - now + Math.random() * 1000 : 0;
  const afterMs = Math.round(Math.min(Math.max(backoffMs(attempt, backoff.baseMs, backoff.maxMs), untilReset), deadlineAt.getTime() - now));
  return { wait: true, afterMs, at: new Date(now + afterMs) };
}

/** A transient failure that lasted until the deadline. */
export function atDeadline(failure: StepFailure, deadline: string): StepFailure {
  return { ...failure, message: `${failure.message} (still failing at this generation's deadline, ${deadline})` };
}
