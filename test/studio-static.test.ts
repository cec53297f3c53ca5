// How the server serves the studio's bundle (src/http/studio.ts): over real HTTP, through the
// real server's routes, and from a directory without a bundle.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudioHandler } from '../src/http/studio.ts';
import { startStack, type Stack } from './helpers/stack.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with the path exactly as given: fetch would normalise `..` and `%2e%2e` away first. */
function raw(origin: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

let stack: Stack;
let page: Answer;
let script: string;
beforeAll(async () => {
  stack = await startStack();
  page = await raw(stack.app.url, '/');
  script = /<script type="module"[^>]* src="(\/assets\/[^"]+\.js)"/.exec(page.body)![1]!;
});
afterAll(() => stack?.close());

describe('the studio at /', () => {
  it('serves its page, never cached stale, with a content security policy', () => {
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<div id="app"></div>');
    // Nothing from a CDN: every script and stylesheet is the server's own.
    expect(page.body).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves hashed assets with their content type, cached for good, and answers 304 to a matching ETag', async () => {
    const asset = await raw(stack.app.url, script);
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(Number(asset.headers['content-length'])).toBe(Buffer.byteLength(asset.body));
    const css = /href="(\/assets\/[^"]+\.css)"/.exec(page.body)![1]!;
    expect((await raw(stack.app.url, css)).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await raw(stack.app.url, '/favicon.svg')).headers['content-type']).toBe('image/svg+xml');

    const again = await raw(stack.app.url, script, 'GET', { 'if-none-match': String(asset.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    const head = await raw(stack.app.url, script, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('serves nothing outside the bundle, however the path is spelled', async () => {
    for (const path of [
      '/assets/../package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..',
      '/assets/.env',
      '/assets/',
      '/assets//etc/passwd',
      '/favicon.svg/../../package.json',
      '/index.html/../../package.json',
      '/../package.json',
      '/web/dist/index.html',
    ]) {
      const answer = await raw(stack.app.url, path);
      expect(answer.status, path).not.toBe(200);
      expect(answer.body, path).not.toContain('"name": "extendql"');
      expect(answer.body, path).not.toContain('root:');
    }
    expect((await raw(stack.app.url, '/assets/index-missing.js')).status).toBe(404);
  });

  it('has no catch-all page: other paths are not the studio', async () => {
    for (const path of ['/generation/abc', '/chain', '/studio', '/index.htm']) {
      const answer = await raw(stack.app.url, path);
      expect(answer.status, path).toBe(404);
      expect(answer.body, path).not.toContain('<div id="app">');
    }
    // The page's own query string (and the client-side #/ route) is still the page.
    expect((await raw(stack.app.url, '/?from=graphiql')).body).toContain('<div id="app"></div>');
  });

  it('answers 405 to other methods, and GraphQL stays at /graphql', async () => {
    const post = await raw(stack.app.url, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    const graphiql = await raw(stack.app.url, '/graphql', 'GET', { accept: 'text/html' });
    expect(graphiql.status).toBe(200);
    expect(graphiql.body).toContain('Open the studio');
  });
});

describe('without a built bundle', () => {
  let dir: string;
  let server: Server;
  let origin: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'extendql-no-studio-'));
    const studio = createStudioHandler(join(dir, 'dist'));
    server = createServer((req, res) => void studio.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('answers / with a page that says how to build the studio', async () => {
    const answer = await raw(origin, '/');
    expect(answer.status).toBe(503);
    expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.body).toContain('The studio is not built');
    expect(answer.body).toContain('npm run build:web');
    expect(answer.body).toContain('href="/graphql"');
    expect((await raw(origin, '/assets/index-abc.js')).status).toBe(404);
  });
});
