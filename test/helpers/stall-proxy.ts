import http from 'node:http';

export interface StallProxy {
  /** Use as SEGMIND_BASE_URL. */
  url: string;
  /**
   * The next `times` MP4 downloads through the proxy send their full Content-Length, then only
   * `fraction` of the bytes, then nothing more (the connection stays open): a copy stuck halfway.
   */
  stallOutputs(times?: number, fraction?: number): void;
  /** Bytes sent of each stalled download (and the full size), in order. */
  stalled: { sent: number; total: number }[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'host']);

/**
 * A pass-through HTTP proxy in front of the fake Segmind, on 127.0.0.1. It rewrites the fake's
 * origin in JSON answers to its own, so that output downloads come through it too, where they can
 * be made to stall in the middle of the body. It never logs anything (it sees the Segmind key).
 */
export async function startStallProxy(targetUrl: string): Promise<StallProxy> {
  const target = new URL(targetUrl).origin;
  let ownUrl = '';
  let stallsLeft = 0;
  let stallFraction = 0.5;
  const stalled: StallProxy['stalled'] = [];

  const server = http.createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const upstream = await fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
        redirect: 'manual',
      });
      let body = Buffer.from(await upstream.arrayBuffer());
      const outHeaders: Record<string, string> = {};
      upstream.headers.forEach((value, name) => {
        if (!HOP_BY_HOP.has(name)) outHeaders[name] = value;
      });
      if ((upstream.headers.get('content-type') ?? '').includes('json')) {
        body = Buffer.from(body.toString('utf8').split(target).join(ownUrl));
      }
      outHeaders['content-length'] = String(body.length);
      res.writeHead(upstream.status, outHeaders);

      const isOutput = req.method === 'GET' && /^\/outputs\//.test(req.url ?? '') && upstream.status === 200;
      if (isOutput && stallsLeft > 0) {
        stallsLeft--;
        const sent = Math.floor(body.length * stallFraction);
        stalled.push({ sent, total: body.length });
        res.write(body.subarray(0, sent));
        return; // and never finish: the rest of the body does not come
      }
      res.end(body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('stall proxy: unexpected address');
  ownUrl = `http://127.0.0.1:${address.port}`;

  return {
    url: ownUrl,
    stallOutputs(times = 1, fraction = 0.5) {
      stallsLeft = times;
      stallFraction = fraction;
    },
    stalled,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
