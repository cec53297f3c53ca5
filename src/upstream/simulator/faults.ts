// Fault injection for the simulator: FIFO queues of faults per route.

export type SimRoute = 'submit' | 'status' | 'result' | 'output' | 'credits' | 'v1';

export type Fault =
  /** Answer with this status instead. Default body: JSON {"error": "..."} (HTML for 405). */
  | { kind: 'http'; status: number; body?: string; headers?: Record<string, string> }
  /** Handle the request at once, but send the answer only after `ms`. */
  | { kind: 'delay'; ms: number }
  /**
   * Destroy the socket without answering. By default the request is not handled at all; with
   * `after: true` it is handled first (a submit creates a billed job) and only the answer is lost.
   */
  | { kind: 'drop'; after?: boolean }
  /** Send the Content-Length of the full body, then half of the bytes, then destroy the socket. */
  | { kind: 'truncate' }
  /** Answer 200 text/html instead of the real body (meant for the 'output' route). */
  | { kind: 'notMp4' }
  /** 'status' route only: report an earlier status than the real one (COMPLETED/FAILED → PROCESSING, PROCESSING → QUEUED; QUEUED stays QUEUED). */
  | { kind: 'flap' };

export class FaultQueues {
  private readonly queues = new Map<SimRoute, Fault[]>();

  inject(route: SimRoute, fault: Fault, times = 1): void {
    const queue = this.queues.get(route) ?? [];
    for (let i = 0; i < times; i++) queue.push(fault);
    this.queues.set(route, queue);
  }

  clear(): void {
    this.queues.clear();
  }

  /** The fault for the next request on `route`, if one is queued. */
  take(route: SimRoute): Fault | undefined {
    return this.queues.get(route)?.shift();
  }
}

const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized. API key is invalid or may have expired...',
  403: 'Forbidden: insufficient permissions',
  404: 'Not found',
  406: 'Insufficient credits. Please add credits to your account.',
  410: 'This model has been retired',
  422: 'Unprocessable entity',
  429: 'Rate limit exceeded. Please try again later.',
  500: 'Internal server error',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

export const METHOD_NOT_ALLOWED_HTML =
  '<!DOCTYPE html>\n<html><head><title>405 Method Not Allowed</title></head>' +
  '<body><h1>Method Not Allowed</h1><p>The method is not allowed for the requested URL.</p></body></html>\n';

export const NOT_MP4_HTML =
  '<!DOCTYPE html>\n<html><head><title>Error</title></head>' +
  '<body><h1>Something went wrong</h1><p>This is not the video you asked for.</p></body></html>\n';

/** The status, content type and body that an 'http' fault answers with. */
export function httpFaultBody(fault: Extract<Fault, { kind: 'http' }>): { contentType: string; body: string } {
  if (fault.body !== undefined) {
    const looksJson = (() => {
      try {
        JSON.parse(fault.body);
        return true;
      } catch {
        return false;
      }
    })();
    const contentType = looksJson ? 'application/json' : fault.body.trimStart().startsWith('<') ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
    return { contentType, body: fault.body };
  }
  if (fault.status === 405) return { contentType: 'text/html; charset=utf-8', body: METHOD_NOT_ALLOWED_HTML };
  const message = DEFAULT_MESSAGES[fault.status] ?? `HTTP ${fault.status}`;
  return { contentType: 'application/json', body: JSON.stringify({ error: message }) };
}
