import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Config } from '../config.ts';

/**
 * Node's own bounds for the HTTP server: headers within `headersTimeoutMs`, a whole request
 * (an upload too) within `uploadTimeoutMs`, idle keep-alive connections closed after
 * `keepAliveTimeoutMs`. Node's defaults let a client take 300 s to send one request.
 */
export function serverTimeouts(http: Config['http']): ServerOptions {
  const requestTimeout = Math.max(http.uploadTimeoutMs, http.requestTimeoutMs, http.headersTimeoutMs);
  return {
    headersTimeout: http.headersTimeoutMs,
    requestTimeout,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // How often Node looks for requests past those bounds (its default, 30 s, would stretch a 15 s bound to 45 s).
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(Math.min(http.headersTimeoutMs, requestTimeout) / 4))),
  };
}

/**
 * A request body other than an upload must arrive within `ms`: Node's requestTimeout is sized
 * for uploads, so a client trickling a small JSON body would otherwise hold its connection that
 * long. Past the bound the connection is dropped.
 */
export function limitBodyTime(req: IncomingMessage, res: ServerResponse, ms: number): void {
  if (req.complete || req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
  const timer = setTimeout(() => {
    if (!req.complete) req.socket.destroy();
  }, ms);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done);
  res.once('close', done);
}
