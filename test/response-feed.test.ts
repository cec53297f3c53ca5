/**
 * src/net/response-feed.ts, the dispatcher-level GET behind output downloads, against a real HTTP
 * server on 127.0.0.1: the body held until it is piped, backpressure, and every way it can end.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyCutShort, openResponse } from '../src/net/response-feed.ts';

const BIG = Buffer.alloc(32 * 1024 * 1024, 'x');
let server: Server;
let base: string;
let agent: Agent;
/** How many body bytes the origin managed to hand to its socket. */
let sent = 0;

const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/big': (_req, res) => {
    sent = 0;
    res.writeHead(200, { 'content-length': BIG.length });
    let offset = 0;
    const more = () => {
      while (offset < BIG.length) {
        const piece = BIG.subarray(offset, offset + 64 * 1024);
        offset += piece.length;
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  },
  '/cut': (req, res) => {
    res.writeHead(200, { 'content-length': 100_000 });
    res.write(Buffer.alloc(30_000, 'y'), () => req.socket.destroy());
  },
  '/missing': (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no such output');
  },
};

beforeAll(async () => {
  server = createServer((req, res) => (routes[req.url!] ?? ((_q: IncomingMessage, r: ServerResponse) => r.end('ok')))(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  agent = new Agent();
});

afterAll(async () => {
  await agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A sink that keeps what it gets, each write taking a little while (a slow disk). */
function slowSink(delayMs = 1) {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      setTimeout(callback, delayMs);
    },
  });
  return { sink, bytes: () => Buffer.concat(chunks) };
}

describe('openResponse', () => {
  it('holds the body until it is piped, pausing the transfer past 1 MiB, then writes every byte with the sink’s backpressure', async () => {
    const feed = await openResponse(agent, new URL(`${base}/big`), { headers: {} });
    expect(feed.statusCode).toBe(200);
    expect(feed.headers['content-length']).toBe(String(BIG.length));
    // Nobody reads yet: the transfer stops well short of the 32 MiB body (1 MiB kept, plus the sockets' buffers).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    const { sink, bytes } = slowSink();
    await feed.pipeTo(sink);
    expect(bytes().equals(BIG)).toBe(true);
  });

  it('rejects the pipe with BodyCutShort when the origin hangs up mid-body, after what did arrive was written', async () => {
    const feed = await openResponse(agent, new URL(`${base}/cut`), { headers: {} });
    const { sink } = slowSink(0);
    const failure = await feed.pipeTo(sink).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BodyCutShort);
    expect(sink.destroyed).toBe(true);
  });

  it('rejects with the sink’s own error when the sink fails, and stops the transfer', async () => {
    const feed = await openResponse(agent, new URL(`${base}/big`), { headers: {} });
    const disk = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    let writes = 0;
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback(++writes === 3 ? disk : null) });
    await expect(feed.pipeTo(sink)).rejects.toBe(disk);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sent).toBeLessThan(BIG.length);
  });

  it('answers an error status with its headers, and discard drops the rest', async () => {
    const feed = await openResponse(agent, new URL(`${base}/missing`), { headers: {} });
    expect(feed.statusCode).toBe(404);
    feed.discard();
    // The agent goes on working.
    const next = await openResponse(agent, new URL(`${base}/ok`), { headers: {} });
    const { sink, bytes } = slowSink(0);
    await next.pipeTo(sink);
    expect(bytes().toString()).toBe('ok');
  });

  it('rejects with the signal’s reason: before the call, while the body is held, and mid-pipe', async () => {
    await expect(openResponse(agent, new URL(`${base}/ok`), { headers: {}, signal: AbortSignal.abort(new Error('stopping')) })).rejects.toThrow('stopping');

    const held = new AbortController();
    const feed = await openResponse(agent, new URL(`${base}/big`), { headers: {}, signal: held.signal });
    held.abort(new Error('gone while held'));
    await expect(feed.pipeTo(slowSink().sink)).rejects.toThrow('gone while held');

    const piping = new AbortController();
    const second = await openResponse(agent, new URL(`${base}/big`), { headers: {}, signal: piping.signal });
    const { sink } = slowSink();
    const done = second.pipeTo(sink);
    setTimeout(() => piping.abort(new Error('gone mid-pipe')), 50);
    await expect(done).rejects.toThrow('gone mid-pipe');
    expect(sink.destroyed).toBe(true);
  });

  it('rejects a connection that cannot be made with undici’s own error, code intact', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(openResponse(agent, new URL(`http://127.0.0.1:${port}/`), { headers: {} })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
