/**
 * src/net/text-call.ts, the dispatcher-level call behind every Segmind request, against a real
 * HTTP server on 127.0.0.1: answers, limits, aborts before and after the call starts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadline } from '../src/net/deadline.ts';
import { callForText, TextCallTooLarge } from '../src/net/text-call.ts';

let server: Server;
let base: string;
const seen: { method: string; url: string; body: string; headers: IncomingMessage['headers'] }[] = [];
const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/json': (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'x-rate-limit-reset-at-utc': '1800000000' });
    res.end(JSON.stringify({ error: 'slow down', text: 'ünïcödé' }));
  },
  // The body comes in many small writes, so it arrives in several chunks.
  '/pieces': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const next = () => (n++ < 50 ? res.write('0123456789'.repeat(100), () => setImmediate(next)) : res.end('end'));
    next();
  },
  '/huge': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const piece = 'x'.repeat(64 * 1024);
    const more = () => {
      while (!res.destroyed && res.write(piece));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  },
  '/slow': (_req, res) => void setTimeout(() => res.end('late'), 400),
  // A byte order mark, then JSON, then a byte that is not UTF-8.
  '/bom': (_req, res) => res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"status":"QUEUED"}'), Buffer.from([0xff])])),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, body, headers: req.headers });
      (routes[req.url!.split('?')[0]!] ?? ((_q: IncomingMessage, r: ServerResponse) => r.end('ok')))(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const call = (over: Partial<Parameters<typeof callForText>[2]> = {}) => ({
  method: 'GET' as const,
  headers: { accept: 'application/json' },
  signal: new AbortController().signal,
  maxBytes: 1024 * 1024,
  ...over,
});

describe('callForText', () => {
  it('answers the status, headers and whole body of any status, and sends method, headers, query and body', async () => {
    const agent = new Agent();
    const answer = await callForText(agent, new URL(`${base}/json?a=1`), call({ method: 'POST', headers: { 'x-api-key': 'k', 'content-type': 'application/json' }, body: '{"p":1}' }));
    expect(answer.statusCode).toBe(429);
    expect(answer.headers['x-rate-limit-reset-at-utc']).toBe('1800000000');
    expect(JSON.parse(answer.body)).toEqual({ error: 'slow down', text: 'ünïcödé' });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/json?a=1', body: '{"p":1}', headers: { 'x-api-key': 'k' } });

    // Read as undici's body.text() does: the byte order mark goes, a bad byte becomes U+FFFD.
    expect((await callForText(agent, new URL(`${base}/bom`), call())).body).toBe('{"status":"QUEUED"}\uFFFD');

    const pieces = await callForText(agent, new URL(`${base}/pieces`), call());
    expect(pieces.body).toBe('0123456789'.repeat(100 * 50) + 'end');
    await agent.close();
  });

  it('ends an answer over its limit with TextCallTooLarge, and the connection with it', async () => {
    const agent = new Agent();
    await expect(callForText(agent, new URL(`${base}/huge`), call({ maxBytes: 256 * 1024 }))).rejects.toBeInstanceOf(TextCallTooLarge);
    // The agent is still usable: the cut connection was dropped, not reused.
    expect((await callForText(agent, new URL(`${base}/ok`), call())).body).toBe('ok');
    await agent.close();
  });

  it('rejects with the deadline reason when time runs out mid-call, and when the signal had already aborted', async () => {
    const agent = new Agent();
    const limit = deadline(100);
    const started = Date.now();
    await expect(callForText(agent, new URL(`${base}/slow`), call({ signal: limit.signal }))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(350);
    limit.clear();

    const before = seen.length;
    await expect(callForText(agent, new URL(`${base}/ok`), call({ signal: AbortSignal.abort(new Error('stopping')) }))).rejects.toThrow('stopping');
    expect(seen.length).toBe(before); // nothing was sent
    await agent.close();
  });

  it('gives up on a call still waiting for a connection at once, and never sends it', async () => {
    // One connection, busy with a slow call: the second call waits in the pool's queue.
    const pool = new Pool(base, { connections: 1 });
    const slow = callForText(pool, new URL(`${base}/slow`), call());
    const waiting = new AbortController();
    const queued = callForText(pool, new URL(`${base}/queued`), call({ signal: waiting.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const abortedAt = Date.now();
    waiting.abort(new Error('caller left'));
    await expect(queued).rejects.toThrow('caller left');
    expect(Date.now() - abortedAt).toBeLessThan(100);
    expect((await slow).body).toBe('late');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.some((request) => request.url === '/queued')).toBe(false);
    await pool.close();
  });

  it('passes connection failures through with their codes, for the caller to classify', async () => {
    const agent = new Agent();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(callForText(agent, new URL(`http://127.0.0.1:${port}/`), call())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await agent.close();
  });
});
