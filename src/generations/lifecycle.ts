import type { GenerationStatus } from '../generated/prisma/client.js';
import { DownloadError } from '../storage/download.js';
import { StorageError } from '../storage/storage.js';
import { UpstreamError } from '../upstream/segmind.js';

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

export interface StepFailure {
  code: string;
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
