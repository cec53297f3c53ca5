// The simulator's HTTP plumbing: replies, request bodies, recording, rate-limit headers, sending.

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { httpFaultBody, type Fault } from './faults.ts';

/** A buffer, or a file (or the inclusive byte range start..end of it). */
export type Body = Buffer | { file: string; size: number; start?: number; end?: number };
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Body;
}

export interface RecordedRequest {
  method: string;
  /** The request target as sent, including any query string. */
  path: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON, or the raw string if it is not JSON, or undefined if there was no body. */
  body: unknown;
  /** Date.now() when the request arrived. */
  at: number;
}

const MAX_BODY_BYTES = 1024 * 1024;
const RATE_LIMIT_PER_MINUTE = 1000; // generous and never enforced; only the headers are real

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(JSON.stringify(value)),
});
export const error = (status: number, message: string): Reply => json(status, { error: message });
export const html = (status: number, text: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': 'text/html; charset=utf-8', ...headers },
  body: Buffer.from(text),
});

export function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export async function readBody(req: http.IncomingMessage): Promise<{ raw: Buffer; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk); // beyond the limit: drain, don't keep
  }
  return { raw: Buffer.concat(chunks), tooLarge: size > MAX_BODY_BYTES };
}

export function parseForRecord(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The x-rate-limit-* headers of a per-minute window. */
export class RateWindow {
  private start = 0;
  private used = 0;

  headers(): Record<string, string> {
    const now = Date.now();
    const windowStart = now - (now % 60_000);
    if (windowStart !== this.start) {
      this.start = windowStart;
      this.used = 0;
    }
    this.used++;
    return {
      'x-rate-limit-remaining': String(Math.max(0, RATE_LIMIT_PER_MINUTE - this.used)),
      'x-rate-limit-reset-at-utc': new Date(windowStart + 60_000).toISOString(),
    };
  }
}

export function faultReply(fault: Extract<Fault, { kind: 'http' }>): Reply {
  const { contentType, body } = httpFaultBody(fault);
  const extra: Record<string, string> =
    fault.status === 429
      ? { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset-at-utc': new Date(Date.now() + 1000).toISOString() }
      : {};
  return { status: fault.status, headers: { 'content-type': contentType, ...extra, ...fault.headers }, body: Buffer.from(body) };
}

/** One `bytes=start-[end]` range of a file, as CDNs serve it, so a cut-short download can resume. */
export function fileReply(req: http.IncomingMessage, file: { file: string; size: number }, contentType: string): Reply {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (!range) return { status: 200, headers: { 'content-type': contentType, 'accept-ranges': 'bytes' }, body: file };
  const start = Number(range[1]);
  const end = Math.min(range[2] ? Number(range[2]) : file.size - 1, file.size - 1);
  if (start > end) return { status: 416, headers: { 'content-range': `bytes */${file.size}` }, body: Buffer.alloc(0) };
  return {
    status: 206,
    headers: { 'content-type': contentType, 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${file.size}` },
    body: { ...file, start, end },
  };
}

export async function send(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  reply: Reply,
  rateHeaders: Record<string, string>,
  truncate = false,
): Promise<void> {
  if (res.destroyed) return;
  const body = reply.body;
  const size = Buffer.isBuffer(body) ? body.length : body.start !== undefined ? body.end! - body.start + 1 : body.size;
  res.writeHead(reply.status, { ...rateHeaders, ...reply.headers, 'content-length': String(size) });
  if (req.method === 'HEAD') {
    res.end();
  } else if (truncate) {
    // The promised length, half of the bytes, then a dead connection.
    const bytes = Buffer.isBuffer(body) ? body : (await readFile(body.file)).subarray(body.start ?? 0);
    res.write(bytes.subarray(0, Math.floor(size / 2)), () => res.destroy());
  } else if (Buffer.isBuffer(body)) {
    res.end(body);
  } else {
    await pipeline(createReadStream(body.file, { start: body.start, end: body.end }), res);
  }
}
