// The simulator's routes, answered as Segmind answers them.

import type http from 'node:http';
import { createJob, outputFile, type Sim } from './engine.ts';
import { METHOD_NOT_ALLOWED_HTML, type SimRoute } from './faults.ts';
import { error, fileReply, html, json, type Reply } from './http.ts';
import { isLive, metrics, statusOf, type JobRecord } from './jobs.ts';
import { costUsd, validateExtendRequest } from './rules.ts';

const ROUTES: { pattern: RegExp; route: SimRoute; methods: string[] }[] = [
  { pattern: /^\/v2\/pixverse-5-extend\/?$/, route: 'submit', methods: ['POST'] },
  { pattern: /^\/v1\/pixverse-5-extend\/?$/, route: 'v1', methods: ['POST'] },
  { pattern: /^\/v2\/requests\/([^/]+)\/status$/, route: 'status', methods: ['GET'] },
  { pattern: /^\/v2\/requests\/([^/]+)$/, route: 'result', methods: ['GET'] },
  { pattern: /^\/v1\/requests\/([^/]+)$/, route: 'result', methods: ['GET'] }, // the poll_url
  { pattern: /^\/outputs\/([^/]+)\.mp4$/, route: 'output', methods: ['GET', 'HEAD'] },
  { pattern: /^\/v1\/get-user-credits$/, route: 'credits', methods: ['GET'] },
];

const pathnameOf = (req: http.IncomingMessage) => new URL(req.url ?? '/', 'http://simulator.invalid').pathname;

export function routeOf(req: http.IncomingMessage): SimRoute | undefined {
  return routeOfPath(pathnameOf(req));
}

/** The route a request path (without its query) is answered by, as recorded in `requests`. */
export function routeOfPath(pathname: string): SimRoute | undefined {
  return ROUTES.find(({ pattern }) => pattern.test(pathname))?.route;
}

export const outputUrl = (sim: Sim, job: JobRecord) => `${sim.baseUrl}/outputs/${job.requestId}.mp4`;

function checkAuth(sim: Sim, req: http.IncomingMessage): Reply | undefined {
  const key = req.headers['x-api-key'];
  if (key === undefined || key === '') return error(401, 'Missing Authorization or x-api-key in header');
  if (key !== sim.apiKey) return error(401, 'Unauthorized. API key is invalid or may have expired...');
  return undefined;
}

/** Content type, JSON, rules and credits: either a new job or the error reply. */
async function submit(sim: Sim, req: http.IncomingMessage, raw: Buffer, api: 'v1' | 'v2'): Promise<JobRecord | Reply> {
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
  if (sim.balance < cost) {
    return error(406, `Insufficient credits. This request costs $${cost} and your balance is $${sim.balance}.`);
  }
  return createJob(sim, result.params, api, cost);
}

async function handleV1(sim: Sim, req: http.IncomingMessage, raw: Buffer): Promise<Reply> {
  const job = await submit(sim, req, raw, 'v1');
  if (!('requestId' in job)) return job;
  await job.settled;
  if (job.final === 'FAILED') return error(422, job.failure ?? 'Generation failed');
  const output = await outputFile(sim, job);
  return {
    status: 200,
    headers: {
      'content-type': 'video/mp4',
      'x-remaining-credits': String(job.remainingCredits),
      'x-cost': String(job.cost),
      'x-generation-time': String(metrics(job, sim.timing).total_time),
      'x-seed-value': String(job.seed),
      'x-request-id': job.requestId,
    },
    body: output,
  };
}

async function handleSubmit(sim: Sim, req: http.IncomingMessage, raw: Buffer): Promise<Reply> {
  const job = await submit(sim, req, raw, 'v2');
  if (!('requestId' in job)) return job;
  const id = job.requestId;
  return json(200, {
    request_id: id,
    status: 'QUEUED',
    poll_url: `${sim.baseUrl}/v1/requests/${id}`,
    status_url: `${sim.baseUrl}/v2/requests/${id}/status`,
    response_url: `${sim.baseUrl}/v2/requests/${id}`,
  });
}

const fullMetrics = (sim: Sim, job: JobRecord) => ({ ...metrics(job, sim.timing), cost: job.cost, remaining_credits: job.remainingCredits });
/** Like Segmind, a failed job answers 422 on its status and its result, with its error and metrics. */
const failedReply = (sim: Sim, job: JobRecord) =>
  json(422, { status: 'FAILED', request_id: job.requestId, error: job.failure, metrics: fullMetrics(sim, job) });

async function liveJob(sim: Sim, id: string): Promise<JobRecord | undefined> {
  const job = await sim.store.find(id);
  return job && isLive(job, sim.timing) ? job : undefined;
}

async function handleStatus(sim: Sim, id: string, flap: boolean): Promise<Reply> {
  const job = await liveJob(sim, id);
  if (!job) return error(404, 'Request not found or expired');
  let status = statusOf(job, sim.timing);
  if (flap) status = status === 'QUEUED' || status === 'PROCESSING' ? 'QUEUED' : 'PROCESSING';
  if (status === 'FAILED') return failedReply(sim, job);
  return json(200, { status, request_id: id, metrics: metrics(job, sim.timing) });
}

async function handleResult(sim: Sim, id: string): Promise<Reply> {
  const job = await liveJob(sim, id);
  if (!job) return error(404, 'Request not found or expired');
  const status = statusOf(job, sim.timing);
  if (status === 'QUEUED' || status === 'PROCESSING') {
    return json(200, { status, request_id: id, metrics: metrics(job, sim.timing) });
  }
  if (status === 'FAILED') return failedReply(sim, job);
  return json(200, { status, request_id: id, output: outputUrl(sim, job), metrics: fullMetrics(sim, job) });
}

async function handleOutput(sim: Sim, req: http.IncomingMessage, id: string): Promise<Reply> {
  const job = await sim.store.find(id); // outputs outlive the 1-hour results
  if (!job || statusOf(job, sim.timing) !== 'COMPLETED') return error(404, 'File not found');
  return fileReply(req, await outputFile(sim, job), 'video/mp4');
}

export async function dispatch(sim: Sim, req: http.IncomingMessage, raw: Buffer, tooLarge: boolean, flap: boolean): Promise<Reply> {
  const pathname = pathnameOf(req);
  const method = req.method ?? 'GET';
  for (const { pattern, route, methods } of ROUTES) {
    const match = pattern.exec(pathname);
    if (!match) continue;
    if (!methods.includes(method)) return html(405, METHOD_NOT_ALLOWED_HTML, { allow: methods.join(', ') });
    const id = decodeURIComponent(match[1] ?? '');
    if (route === 'output') return handleOutput(sim, req, id);
    const denied = checkAuth(sim, req);
    if (denied) return denied;
    if (tooLarge) return error(400, 'Request body too large');
    switch (route) {
      case 'submit':
        return handleSubmit(sim, req, raw);
      case 'v1':
        return handleV1(sim, req, raw);
      case 'status':
        return handleStatus(sim, id, flap);
      case 'result':
        return handleResult(sim, id);
      case 'credits':
        return json(200, { credits: sim.balance, 'free-credits': 0 });
    }
  }
  return error(404, 'Not found');
}
