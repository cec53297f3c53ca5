/** What a deadline aborts with: the same TimeoutError that AbortSignal.timeout uses. */
function timeoutError(): DOMException {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

export interface Deadline {
  /** Aborts after the time given (a TimeoutError), or when the parent signal does (its reason). */
  readonly signal: AbortSignal;
  /** Ends the timer and the link to the parent: call it once the call is over, however it ended. */
  clear(): void;
}

/**
 * A time limit for one outgoing call, optionally joined to a caller's signal.
 *
 * AbortSignal.timeout cannot be cancelled: its timer, and the objects it holds, stay scheduled for
 * the whole time limit after the call has ended, long enough to be moved to V8's old generation,
 * where only a full collection frees them. At one Segmind status call per generation per second
 * (and a 30 s limit), a worker carried tens of thousands of them. A cleared deadline is garbage as
 * soon as its call is. AbortSignal.any, for the same reason, is not used either.
 */
export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(timeoutError()), ms);
  // Like AbortSignal.timeout: the limit alone does not keep the process running.
  timer.unref();
  const follow = () => controller.abort(parent?.reason);
  if (parent?.aborted) follow();
  else parent?.addEventListener('abort', follow, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', follow);
    },
  };
}
