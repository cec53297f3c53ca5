// A simulator of Segmind's pixverse-5-extend API (v1 sync, v2 async, credits), as described in
// /work/shared/docs/segmind-contract.md. A real node:http server on 127.0.0.1, used as the
// built-in upstream when there is no SEGMIND_API_KEY and as the fake Segmind in tests (with
// fault injection and request recording). It imports nothing from the rest of the product.
// It never logs anything (so it cannot leak the api key).

import { randomInt, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { FaultQueues, METHOD_NOT_ALLOWED_HTML, NOT_MP4_HTML, httpFaultBody, type Fault, type SimRoute } from './faults.js';
import { createMp4Cache } from './mp4.js';
import { OUTPUT_SIZE, costUsd, validateExtendRequest, type ExtendParams } from './rules.js';

export type { Fault, SimRoute } from './faults.js';
export type { ExtendParams } from './rules.js';
export { SIMULATED_LABEL } from './mp4.js';

export interface SimulatorOptions {
  /** The one x-api-key it accepts. */
  apiKey: string;
  /** Where generated MP4s are cached. */
  mediaDir: string;
  /** Starting balance in USD, default 100. */
  credits?: number;
  /** Time a job stays QUEUED, default 500 ms. */
  queueMs?: number;
  /** Time in PROCESSING, default 2000 ms. */
  processingMs?: number;
  /** v2 results answer 404 this long after submission, default 1 hour. */
  resultTtlMs?: number;
  /**
   * Default false. When true, GET the video_url when processing starts and fail the job if it is
   * unreachable or does not start with an MP4/MOV `ftyp` box. Fetched URLs are in `fetchedSources`.
   */
  fetchSources?: boolean;
  /** Default 0 (a random free port). The host is always 127.0.0.1. */
  port?: number;
}

export type JobStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

export interface SimJob {
  requestId: string;
  /** Which API submitted it. */
  api: 'v1' | 'v2';
  status: JobStatus;
  params: ExtendParams;
  createdAt: number;
  /** USD charged at submission (refunded if the job failed). */
  cost: number;
  outputUrl?: string;
  /** The failure message, once the job is FAILED. */
  error?: string;
  /** True once the v2 result answers 404 (expire() or resultTtlMs). */
  expired: boolean;
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

export interface SimulatorHandle {
  /** e.g. http://127.0.0.1:43123, to use as SEGMIND_BASE_URL. */
  url: string;
  /** Closes the server and all sockets, clears timers and aborts source fetches. */
  close(): Promise<void>;
  /** Every request received, in order of arrival. */
  requests: RecordedRequest[];
  clearRequests(): void;
  credits(): number;
  setCredits(usd: number): void;
  faults: { inject(route: SimRoute, fault: Fault, times?: number): void; clear(): void };
  /** The next submitted job (v1 or v2) ends FAILED with this error. */
  failNextJob(message: string): void;
  /** Make a v2 result (and its status) answer 404, as if an hour had passed. */
  expire(requestId: string): void;
  jobs(): SimJob[];
  /** URLs fetched by the fetchSources check, in order. */
  fetchedSources: string[];
}

interface JobRecord {
  requestId: string;
  api: 'v1' | 'v2';
  params: ExtendParams;
  createdAt: number;
  cost: number;
  seed: number;
  /** Balance after this job's charge (and refund, if it failed). */
  remainingCredits: number;
  /** Set by failNextJob or by the source check; the job ends FAILED with it. */
  failure?: string;
  final?: 'COMPLETED' | 'FAILED';
  settledAt?: number;
  sourceCheck?: Promise<void>;
  settled: Promise<void>;
  markSettled: () => void;
  expired: boolean;
}

/** A buffer, or a file (or the inclusive byte range start..end of it). */
type Body = Buffer | { file: string; size: number; start?: number; end?: number };
interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Body;
}

const MAX_BODY_BYTES = 1024 * 1024;
const RATE_LIMIT_PER_MINUTE = 1000; // generous and never enforced; only the headers are real
const SOURCE_FETCH_TIMEOUT_MS = 15_000;

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(JSON.stringify(value)),
});
const error = (status: number, message: string): Reply => json(status, { error: message });
const html = (status: number, text: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': 'text/html; charset=utf-8', ...headers },
  body: Buffer.from(text),
});

const ROUTES: { pattern: RegExp; route: SimRoute; methods: string[] }[] = [
  { pattern: /^\/v2\/pixverse-5-extend\/?$/, route: 'submit', methods: ['POST'] },
  { pattern: /^\/v1\/pixverse-5-extend\/?$/, route: 'v1', methods: ['POST'] },
  { pattern: /^\/v2\/requests\/([^/]+)\/status$/, route: 'status', methods: ['GET'] },
  { pattern: /^\/v2\/requests\/([^/]+)$/, route: 'result', methods: ['GET'] },
  { pattern: /^\/v1\/requests\/([^/]+)$/, route: 'result', methods: ['GET'] }, // the poll_url
  { pattern: /^\/outputs\/([^/]+)\.mp4$/, route: 'output', methods: ['GET', 'HEAD'] },
  { pattern: /^\/v1\/get-user-credits$/, route: 'credits', methods: ['GET'] },
];

const seconds = (ms: number): number => Math.round(ms) / 1000;
const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6;

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

async function readBody(req: http.IncomingMessage): Promise<{ raw: Buffer; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk); // beyond the limit: drain, don't keep
  }
  return { raw: Buffer.concat(chunks), tooLarge: size > MAX_BODY_BYTES };
}

function parseForRecord(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** MP4 and QuickTime files (as PixVerse takes them) start with a box whose type is `ftyp`. */
async function startsWithFtyp(res: Response): Promise<boolean> {
  if (!res.body) return false;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < 8) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      length += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts).subarray(4, 8).toString('latin1') === 'ftyp';
}

export async function startSimulator(options: SimulatorOptions): Promise<SimulatorHandle> {
  const queueMs = options.queueMs ?? 500;
  const processingMs = options.processingMs ?? 2000;
  const resultTtlMs = options.resultTtlMs ?? 3_600_000;
  const fetchSources = options.fetchSources ?? false;
  const cache = createMp4Cache(options.mediaDir);

  let balance = roundUsd(options.credits ?? 100);
  let pendingFailure: string | undefined;
  let baseUrl = '';
  const jobs = new Map<string, JobRecord>();
  const requests: RecordedRequest[] = [];
  const fetchedSources: string[] = [];
  const faults = new FaultQueues();
  const timers = new Set<NodeJS.Timeout>();
  const closing = new AbortController();
  let rateWindowStart = 0;
  let rateWindowUsed = 0;

  // ---- timers that close() can clear ----
  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }
  const sleep = (ms: number) => new Promise<void>((resolve) => later(ms, resolve));

  // ---- jobs ----
  function statusOf(job: JobRecord, now = Date.now()): JobStatus {
    if (job.final) return job.final;
    return now - job.createdAt < queueMs ? 'QUEUED' : 'PROCESSING';
  }

  const outputUrl = (job: JobRecord) => `${baseUrl}/outputs/${job.requestId}.mp4`;

  function liveJob(id: string): JobRecord | undefined {
    const job = jobs.get(id);
    if (!job || job.expired || Date.now() - job.createdAt >= resultTtlMs) return undefined;
    return job;
  }

  function metrics(job: JobRecord) {
    const end = job.settledAt ?? Date.now();
    const elapsed = end - job.createdAt;
    return {
      queue_time: seconds(Math.min(elapsed, queueMs)),
      inference_time: seconds(Math.max(0, elapsed - queueMs)),
      total_time: seconds(elapsed),
    };
  }

  async function checkSource(job: JobRecord): Promise<void> {
    const url = job.params.video_url;
    fetchedSources.push(url);
    try {
      const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(SOURCE_FETCH_TIMEOUT_MS)]);
      const res = await fetch(url, { signal, redirect: 'follow' });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        job.failure = `Failed to fetch video_url: HTTP ${res.status}`;
      } else if (!(await startsWithFtyp(res))) {
        job.failure = 'video_url is not a supported video: expected an MP4 or MOV file';
      }
    } catch (err) {
      job.failure = `Failed to fetch video_url: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  function settle(job: JobRecord): void {
    job.final = job.failure === undefined ? 'COMPLETED' : 'FAILED';
    if (job.final === 'FAILED') balance = roundUsd(balance + job.cost); // failed jobs are not billed
    job.remainingCredits = balance;
    job.settledAt = Date.now();
    job.markSettled();
  }

  function createJob(params: ExtendParams, api: 'v1' | 'v2', cost: number): JobRecord {
    balance = roundUsd(balance - cost);
    let markSettled = () => {};
    const settled = new Promise<void>((resolve) => (markSettled = resolve));
    const job: JobRecord = {
      requestId: randomUUID(),
      api,
      params,
      createdAt: Date.now(),
      cost,
      seed: params.seed ?? randomInt(1, 1_000_000),
      remainingCredits: balance,
      failure: pendingFailure,
      settled,
      markSettled,
      expired: false,
    };
    pendingFailure = undefined;
    jobs.set(job.requestId, job);

    if (job.failure === undefined) {
      const { width, height } = OUTPUT_SIZE[params.quality];
      cache.get(width, height, params.duration).catch(() => undefined); // warm the cache now
    }
    later(queueMs, () => {
      if (fetchSources && job.failure === undefined) job.sourceCheck = checkSource(job);
    });
    later(queueMs + processingMs, () => {
      void (job.sourceCheck ?? Promise.resolve()).then(() => {
        if (!closing.signal.aborted) settle(job);
      });
    });
    return job;
  }

  async function outputFile(job: JobRecord): Promise<{ file: string; size: number }> {
    const { width, height } = OUTPUT_SIZE[job.params.quality];
    const file = await cache.get(width, height, job.params.duration);
    return { file, size: (await stat(file)).size };
  }

  // ---- request handling ----
  function checkAuth(req: http.IncomingMessage): Reply | undefined {
    const key = req.headers['x-api-key'];
    if (key === undefined || key === '') return error(401, 'Missing Authorization or x-api-key in header');
    if (key !== options.apiKey) return error(401, 'Unauthorized. API key is invalid or may have expired...');
    return undefined;
  }

  /** Content type, JSON, rules and credits: either a new job or the error reply. */
  function submit(req: http.IncomingMessage, raw: Buffer, api: 'v1' | 'v2'): JobRecord | Reply {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (contentType !== 'application/json') return error(406, 'Content-Type must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      return error(400, `Invalid JSON in request body: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return error(400, 'Request body must be a JSON object');
    }
    const result = validateExtendRequest(body as Record<string, unknown>);
    if (!result.ok) return error(422, result.error);
    const cost = costUsd(result.params);
    if (balance < cost) {
      return error(406, `Insufficient credits. This request costs $${cost} and your balance is $${balance}.`);
    }
    return createJob(result.params, api, cost);
  }

  async function handleV1(req: http.IncomingMessage, raw: Buffer): Promise<Reply> {
    const job = submit(req, raw, 'v1');
    if (!('requestId' in job)) return job;
    await job.settled;
    if (job.final === 'FAILED') return error(422, job.failure ?? 'Generation failed');
    return {
      status: 200,
      headers: {
        'content-type': 'video/mp4',
        'x-remaining-credits': String(job.remainingCredits),
        'x-cost': String(job.cost),
        'x-generation-time': String(metrics(job).total_time),
        'x-seed-value': String(job.seed),
        'x-request-id': job.requestId,
      },
      body: await outputFile(job),
    };
  }

  function handleSubmit(req: http.IncomingMessage, raw: Buffer): Reply {
    const job = submit(req, raw, 'v2');
    if (!('requestId' in job)) return job;
    const id = job.requestId;
    return json(200, {
      request_id: id,
      status: 'QUEUED',
      poll_url: `${baseUrl}/v1/requests/${id}`,
      status_url: `${baseUrl}/v2/requests/${id}/status`,
      response_url: `${baseUrl}/v2/requests/${id}`,
    });
  }

  function handleStatus(id: string, flap: boolean): Reply {
    const job = liveJob(id);
    if (!job) return error(404, 'Request not found or expired');
    let status = statusOf(job);
    if (flap) status = status === 'QUEUED' || status === 'PROCESSING' ? 'QUEUED' : 'PROCESSING';
    // Like Segmind, a failed job answers 422 here too, with its error and metrics.
    if (status === 'FAILED') return failedReply(job);
    return json(200, { status, request_id: id, metrics: metrics(job) });
  }

  function handleResult(id: string): Reply {
    const job = liveJob(id);
    if (!job) return error(404, 'Request not found or expired');
    const status = statusOf(job);
    if (status === 'QUEUED' || status === 'PROCESSING') {
      return json(200, { status, request_id: id, metrics: metrics(job) });
    }
    if (status === 'FAILED') return failedReply(job);
    return json(200, { status, request_id: id, output: outputUrl(job), metrics: fullMetrics(job) });
  }

  const fullMetrics = (job: JobRecord) => ({ ...metrics(job), cost: job.cost, remaining_credits: job.remainingCredits });
  const failedReply = (job: JobRecord) =>
    json(422, { status: 'FAILED', request_id: job.requestId, error: job.failure, metrics: fullMetrics(job) });

  async function handleOutput(req: http.IncomingMessage, id: string): Promise<Reply> {
    const job = jobs.get(id); // outputs outlive the 1-hour results
    if (!job || statusOf(job) !== 'COMPLETED') return error(404, 'File not found');
    const body = await outputFile(job);
    // One `bytes=start-[end]` range, as CDNs serve it, so an interrupted download can resume.
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range) return { status: 200, headers: { 'content-type': 'video/mp4', 'accept-ranges': 'bytes' }, body };
    const start = Number(range[1]);
    const end = Math.min(range[2] ? Number(range[2]) : body.size - 1, body.size - 1);
    if (start > end) return { status: 416, headers: { 'content-range': `bytes */${body.size}` }, body: Buffer.alloc(0) };
    return {
      status: 206,
      headers: { 'content-type': 'video/mp4', 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${body.size}` },
      body: { ...body, start, end },
    };
  }

  async function dispatch(req: http.IncomingMessage, raw: Buffer, tooLarge: boolean, flap: boolean): Promise<Reply> {
    const pathname = new URL(req.url ?? '/', 'http://simulator.invalid').pathname;
    const method = req.method ?? 'GET';
    for (const { pattern, route, methods } of ROUTES) {
      const match = pattern.exec(pathname);
      if (!match) continue;
      if (!methods.includes(method)) return html(405, METHOD_NOT_ALLOWED_HTML, { allow: methods.join(', ') });
      const id = decodeURIComponent(match[1] ?? '');
      if (route === 'output') return handleOutput(req, id);
      const denied = checkAuth(req);
      if (denied) return denied;
      if (tooLarge) return error(400, 'Request body too large');
      switch (route) {
        case 'submit':
          return handleSubmit(req, raw);
        case 'v1':
          return handleV1(req, raw);
        case 'status':
          return handleStatus(id, flap);
        case 'result':
          return handleResult(id);
        case 'credits':
          return json(200, { credits: balance, 'free-credits': 0 });
      }
    }
    return error(404, 'Not found');
  }

  function routeOf(req: http.IncomingMessage): SimRoute | undefined {
    const pathname = new URL(req.url ?? '/', 'http://simulator.invalid').pathname;
    return ROUTES.find(({ pattern }) => pattern.test(pathname))?.route;
  }

  function rateLimitHeaders(): Record<string, string> {
    const now = Date.now();
    const windowStart = now - (now % 60_000);
    if (windowStart !== rateWindowStart) {
      rateWindowStart = windowStart;
      rateWindowUsed = 0;
    }
    rateWindowUsed++;
    return {
      'x-rate-limit-remaining': String(Math.max(0, RATE_LIMIT_PER_MINUTE - rateWindowUsed)),
      'x-rate-limit-reset-at-utc': new Date(windowStart + 60_000).toISOString(),
    };
  }

  function faultReply(fault: Extract<Fault, { kind: 'http' }>): Reply {
    const { contentType, body } = httpFaultBody(fault);
    const extra: Record<string, string> =
      fault.status === 429
        ? { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset-at-utc': new Date(Date.now() + 1000).toISOString() }
        : {};
    return { status: fault.status, headers: { 'content-type': contentType, ...extra, ...fault.headers }, body: Buffer.from(body) };
  }

  async function send(req: http.IncomingMessage, res: http.ServerResponse, reply: Reply, truncate = false): Promise<void> {
    if (res.destroyed) return;
    const body = reply.body;
    const size = Buffer.isBuffer(body) ? body.length : body.start !== undefined ? body.end! - body.start + 1 : body.size;
    res.writeHead(reply.status, { ...rateLimitHeaders(), ...reply.headers, 'content-length': String(size) });
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

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: flattenHeaders(req.headers),
      body: undefined,
      at: Date.now(),
    };
    requests.push(record);
    const { raw, tooLarge } = await readBody(req);
    record.body = parseForRecord(raw);

    const route = routeOf(req);
    const fault = route ? faults.take(route) : undefined;
    if (fault?.kind === 'drop' && !fault.after) return void req.socket.destroy();
    if (fault?.kind === 'http') return send(req, res, faultReply(fault));
    if (fault?.kind === 'notMp4') return send(req, res, html(200, NOT_MP4_HTML));

    let reply: Reply;
    try {
      reply = await dispatch(req, raw, tooLarge, fault?.kind === 'flap');
    } catch (err) {
      reply = error(500, `Internal simulator error: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (closing.signal.aborted) return;
    if (fault?.kind === 'drop') return void req.socket.destroy();
    if (fault?.kind === 'delay') await sleep(fault.ms);
    return send(req, res, reply, fault?.kind === 'truncate');
  }

  const server = http.createServer((req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('simulator: unexpected server address');
  baseUrl = `http://127.0.0.1:${address.port}`;

  return {
    url: baseUrl,
    async close() {
      closing.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    requests,
    clearRequests() {
      requests.splice(0);
    },
    credits: () => balance,
    setCredits(usd) {
      balance = roundUsd(usd);
    },
    faults: {
      inject: (route, fault, times = 1) => faults.inject(route, fault, times),
      clear: () => faults.clear(),
    },
    failNextJob(message) {
      pendingFailure = message;
    },
    expire: (requestId) => {
      const job = jobs.get(requestId);
      if (job) job.expired = true;
    },
    jobs: () =>
      [...jobs.values()].map((job) => {
        const status = statusOf(job);
        const snapshot: SimJob = {
          requestId: job.requestId,
          api: job.api,
          status,
          params: job.params,
          createdAt: job.createdAt,
          cost: job.cost,
          expired: liveJob(job.requestId) === undefined,
        };
        if (status === 'COMPLETED') snapshot.outputUrl = outputUrl(job);
        if (status === 'FAILED') snapshot.error = job.failure;
        return snapshot;
      }),
    fetchedSources,
  };
}
