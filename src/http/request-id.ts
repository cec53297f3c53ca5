import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';

/** A request id a caller (a gateway, a load balancer) may pass along: short and log-safe. */
const ACCEPTED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const ids = new WeakMap<IncomingMessage, string>();

/** The id of a request seen by `trackRequest`, for log lines written while it is handled. */
export function requestIdOf(req: IncomingMessage | undefined): string | undefined {
  return req ? ids.get(req) : undefined;
}

/**
 * Gives every request an id (the caller's `x-request-id` when it is well-formed, else a new
 * UUID), echoes it in the response, and writes one access-log line when the response ends.
 * The query string is left out of the log: it may carry variables.
 */
export function trackRequest(req: IncomingMessage, res: ServerResponse, logger: Logger): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && ACCEPTED_ID.test(given) ? given : randomUUID();
  ids.set(req, id);
  res.setHeader('x-request-id', id);
  const started = performance.now();
  res.once('close', () => {
    const path = (req.url ?? '/').split('?', 1)[0];
    logger.info(
      { reqId: id, method: req.method, path, status: res.statusCode, durationMs: Math.round(performance.now() - started), aborted: !res.writableFinished },
      'request',
    );
  });
  return id;
}
