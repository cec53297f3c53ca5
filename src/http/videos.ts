import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { ByteRange, VideoStorage } from '../storage/storage.ts';
import { extensionOf } from '../storage/video-types.ts';

export interface VideoRecord {
  storageKey: string;
  byteSize: number;
  sha256: string;
  contentType: string;
}

export interface VideoHandlerOptions {
  storage: VideoStorage;
  lookup(id: string): Promise<VideoRecord | null>;
}

const VIDEO_PATH = /^\/videos\/([A-Za-z0-9_-]{1,64})\.(mp4|mov)$/;

/** Serves GET/HEAD /videos/<id>.mp4 (and .mov for uploaded sources) with ETag, conditional and single-range support. */
export function createVideoHandler(options: VideoHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { storage, lookup } = options;

  return async (req, res) => {
    try {
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      const [, id, extension] = VIDEO_PATH.exec(pathname) ?? [];
      if (id === undefined) return sendJson(res, 404, { error: 'not found' });
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return sendJson(res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' });
      }

      const record = await lookup(id);
      if (!record || extensionOf(record.contentType) !== extension) return sendJson(res, 404, { error: 'not found' });

      const size = record.byteSize;
      const etag = `"${record.sha256}"`;
      const headers: OutgoingHttpHeaders = {
        'Accept-Ranges': 'bytes',
        ETag: etag,
        'Cache-Control': 'public, max-age=31536000, immutable',
      };

      if (etagMatches(req.headers['if-none-match'], etag)) {
        res.writeHead(304, headers).end();
        return;
      }

      // Range is only defined for GET; If-Range must match our (strong) ETag exactly, else send everything.
      const rangeHeader = req.method === 'GET' ? req.headers.range : undefined;
      const ifRange = req.headers['if-range'];
      const range = rangeHeader !== undefined && (ifRange === undefined || ifRange === etag) ? parseRange(rangeHeader, size) : undefined;

      if (range === 'unsatisfiable') {
        return sendJson(res, 416, { error: 'range not satisfiable' }, { ...headers, 'Content-Range': `bytes */${size}` });
      }

      headers['Content-Type'] = record.contentType;
      headers['X-Content-Type-Options'] = 'nosniff';
      headers['Content-Length'] = range ? range.end - range.start + 1 : size;
      if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
      const status = range ? 206 : 200;

      if (req.method === 'HEAD') {
        res.writeHead(status, headers).end();
        return;
      }
      if (size === 0) {
        res.writeHead(status, headers).end();
        return;
      }

      // Open before writing headers so a storage failure can still become a clean 500.
      const body = await storage.read(record.storageKey, range);
      res.writeHead(status, headers);
      try {
        await pipeline(body, res);
      } catch {
        // Client went away mid-body; pipeline has already destroyed the file stream, releasing its handle.
      }
    } catch {
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  };
}

function sendJson(res: ServerResponse, status: number, payload: unknown, headers: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(payload);
  res
    .writeHead(status, {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    })
    .end(body);
}

/** If-None-Match uses weak comparison: `W/` prefixes are ignored; `*` matches any existing representation. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/**
 * Parses a single `bytes=` range against size. Returns undefined when the header should be ignored
 * (malformed, or several ranges, which we answer with the full body).
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;

  if (first === '') {
    // Suffix range: the final n bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Infinity : Number(last);
  if (end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}
