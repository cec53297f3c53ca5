// A simulator of Segmind's pixverse-5-extend API (v1 sync, v2 async, credits), as described in
// /work/shared/docs/segmind-contract.md. A real node:http server on 127.0.0.1, used as the
// built-in upstream when there is no SEGMIND_API_KEY and as the fake Segmind in tests (with
// fault injection and request recording). It imports nothing from the rest of the product.
// It never logs anything (so it cannot leak the api key).

import http from 'node:http';
import { createSim, later, roundUsd, type Sim } from './engine.ts';
import { FaultQueues, NOT_MP4_HTML, type Fault, type SimRoute } from './faults.ts';
import { error, faultReply, flattenHeaders, html, parseForRecord, RateWindow, readBody, send, type RecordedRequest, type Reply } from './http.ts';
import { isLive, statusOf, type JobStatus } from './jobs.ts';
import { dispatch, outputUrl, routeOf } from './routes.ts';
import type { ExtendParams } from './rules.ts';

export type { Fault, SimRoute } from './faults.ts';
export type { ExtendParams } from './rules.ts';
export type { RecordedRequest } from './http.ts';
export type { JobStatus } from './jobs.ts';
export { SIMULATED_LABEL } from './mp4.ts';
export { routeOfPath } from './routes.ts';

export interface SimulatorOptions {
  /** The one x-api-key it accepts. */
  apiKey: string;
  /**
   * Where generated MP4s are cached and jobs are stored (one JSON file each, under jobs/), so a
   * job outlives a restart of the process.
   */
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
   * Default false. When true, GET the video_url when processing starts, as Segmind does, and fail
   * the job unless it is an MP4/MOV within 50 MB, 30 s and 1920 px; the output then continues the
   * source's last frame. When false, outputs are a colour-bar pattern. Fetched URLs are in
   * `fetchedSources`.
   */
  fetchSources?: boolean;
  /** Default 0 (a random free port). The host is always 127.0.0.1. */
  port?: number;
}

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

/** Handles one request: records it, applies any fault queued for its route, answers. */
async function onRequest(sim: Sim, faults: FaultQueues, rate: RateWindow, requests: RecordedRequest[], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const record: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: flattenHeaders(req.headers), body: undefined, at: Date.now() };
  requests.push(record);
  const { raw, tooLarge } = await readBody(req);
  record.body = parseForRecord(raw);

  const route = routeOf(req);
  const fault = route ? faults.take(route) : undefined;
  if (fault?.kind === 'drop' && !fault.after) return void req.socket.destroy();
  if (fault?.kind === 'http') return send(req, res, faultReply(fault), rate.headers());
  if (fault?.kind === 'notMp4') return send(req, res, html(200, NOT_MP4_HTML), rate.headers());

  let reply: Reply;
  try {
    reply = await dispatch(sim, req, raw, tooLarge, fault?.kind === 'flap');
  } catch (err) {
    reply = error(500, `Internal simulator error: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (sim.closing.signal.aborted) return;
  if (fault?.kind === 'drop') return void req.socket.destroy();
  if (fault?.kind === 'delay') await new Promise<void>((resolve) => later(sim, fault.ms, resolve));
  return send(req, res, reply, rate.headers(), fault?.kind === 'truncate');
}

async function listen(server: http.Server, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('simulator: unexpected server address');
  return `http://127.0.0.1:${address.port}`;
}

function snapshots(sim: Sim): SimJob[] {
  return sim.store.all().map((job) => {
    const status = statusOf(job, sim.timing);
    const snapshot: SimJob = {
      requestId: job.requestId,
      api: job.api,
      status,
      params: job.params,
      createdAt: job.createdAt,
      cost: job.cost,
      expired: !isLive(job, sim.timing),
    };
    if (status === 'COMPLETED') snapshot.outputUrl = outputUrl(sim, job);
    if (status === 'FAILED') snapshot.error = job.failure;
    return snapshot;
  });
}

export async function startSimulator(options: SimulatorOptions): Promise<SimulatorHandle> {
  const sim = createSim({
    apiKey: options.apiKey,
    mediaDir: options.mediaDir,
    credits: options.credits,
    fetchSources: options.fetchSources,
    timing: { queueMs: options.queueMs ?? 500, processingMs: options.processingMs ?? 2000, resultTtlMs: options.resultTtlMs ?? 3_600_000 },
  });
  const requests: RecordedRequest[] = [];
  const faults = new FaultQueues();
  const rate = new RateWindow();
  const server = http.createServer((req, res) => {
    onRequest(sim, faults, rate, requests, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.destroy();
    });
  });
  sim.baseUrl = await listen(server, options.port ?? 0);

  return {
    url: sim.baseUrl,
    async close() {
      sim.closing.abort();
      for (const timer of sim.timers) clearTimeout(timer);
      sim.timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.all(sim.checks);
      await sim.store.flush();
    },
    requests,
    clearRequests: () => void requests.splice(0),
    credits: () => sim.balance,
    setCredits: (usd) => void (sim.balance = roundUsd(usd)),
    faults: {
      inject: (route, fault, times = 1) => faults.inject(route, fault, times),
      clear: () => faults.clear(),
    },
    failNextJob: (message) => void (sim.pendingFailure = message),
    expire: (requestId) => {
      const job = sim.store.cached(requestId);
      if (!job) return;
      job.expired = true;
      sim.store.save(job).catch(() => undefined);
    },
    jobs: () => snapshots(sim),
    fetchedSources: sim.fetchedSources,
  };
}
