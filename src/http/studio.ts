// The studio (web/): its built bundle, web/dist, served at `/`. Only `/` (index.html), the
// favicon and `/assets/<file>` are served from it; any other path goes on to GraphQL's 404, so
// there is no catch-all page and no path reaches outside the bundle.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

/** Where `npm install` (or `npm run build:web`) puts the bundle. */
export const STUDIO_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url));

/** Vite names every asset after its content hash: a name never serves other bytes. */
const ASSET = /^\/assets\/([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;
const ROOT_FILES = new Set(['/favicon.svg']);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * The page may load scripts, styles and data from this origin only; videos may come from
 * anywhere, since a generation's source is any http(s) URL and PUBLIC_BASE_URL may be another
 * origin than the one the page was opened at.
 */
const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  'media-src * blob:',
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const MISSING = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>extendql: the studio is not built</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>The studio is not built</h1>
<p>This server serves the studio from <code>web/dist</code>, which is built by <code>npm install</code> when the
development dependencies are installed. Build it with <code>npm run build:web</code> (after <code>npm install</code>),
then reload this page.</p>
<p>The GraphQL API works without it: GraphiQL is at <a href="/graphql">/graphql</a>.</p>
</body></html>
`;

export interface StudioHandler {
  /** Whether a request's path is the studio's (`/`, `/index.html`, the favicon, `/assets/…`). */
  serves(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const pathnameOf = (req: IncomingMessage) => (req.url ?? '/').split('?', 1)[0]!;

export function createStudioHandler(distDir: string = STUDIO_DIST): StudioHandler {
  const root = path.resolve(distDir);
  const fileFor = (pathname: string): { file: string; immutable: boolean } | null => {
    if (pathname === '/' || pathname === '/index.html') return { file: path.join(root, 'index.html'), immutable: false };
    if (ROOT_FILES.has(pathname)) return { file: path.join(root, pathname.slice(1)), immutable: false };
    const asset = ASSET.exec(pathname)?.[1];
    return asset && !asset.includes('..') ? { file: path.join(root, 'assets', asset), immutable: true } : null;
  };
  return {
    serves: (req) => fileFor(pathnameOf(req)) !== null,
    async handle(req, res) {
      const target = fileFor(pathnameOf(req));
      if (!target) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      const isPage = target.file === path.join(root, 'index.html');
      try {
        await serveFile(req, res, target.file, isPage ? { 'Cache-Control': 'no-cache', 'Content-Security-Policy': PAGE_POLICY } : { 'Cache-Control': target.immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=3600' });
      } catch (error) {
        if (res.headersSent) return void res.destroy();
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR';
        if (missing && isPage) return send(res, 503, 'text/html; charset=utf-8', MISSING);
        return missing ? send(res, 404, 'text/plain; charset=utf-8', 'not found\n') : send(res, 500, 'text/plain; charset=utf-8', 'the file could not be read\n');
      }
    },
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

/** One file with its content type, an ETag (size and mtime) and 304 for a matching If-None-Match. */
async function serveFile(req: IncomingMessage, res: ServerResponse, file: string, headers: OutgoingHttpHeaders): Promise<void> {
  const found = await stat(file);
  if (!found.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  const etag = `"${found.size.toString(16)}-${Math.floor(found.mtimeMs).toString(16)}"`;
  const all: OutgoingHttpHeaders = {
    ...headers,
    'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
  if (req.headers['if-none-match'] === etag) return void res.writeHead(304, all).end();
  res.writeHead(200, { ...all, 'Content-Length': found.size });
  if (req.method === 'HEAD') return void res.end();
  await pipeline(createReadStream(file), res).catch(() => undefined); // the client may leave early
}
