import { join } from 'node:path';
import type { Fault, SimRoute, SimulatorHandle } from '../../src/upstream/simulator/index.ts';
import { routeOfPath, startSimulator } from '../../src/upstream/simulator/index.ts';

/**
 * Faults the fake injects, by route. A fault is queued on the route of the request that drew it, so
 * it hits the next request on a route in use: faults never pile up on a route that has gone quiet
 * and then all land on the last straggler.
 */
const FAULTS: Partial<Record<SimRoute, Fault[]>> = {
  submit: [{ kind: 'http', status: 429, headers: { 'x-rate-limit-reset-at-utc': '' } }, { kind: 'http', status: 500 }, { kind: 'http', status: 502 }],
  status: [{ kind: 'http', status: 504 }, { kind: 'http', status: 500 }, { kind: 'flap' }],
  result: [{ kind: 'http', status: 502 }],
  output: [{ kind: 'truncate' }, { kind: 'http', status: 500 }],
};

/** A job that Segmind ran and failed: a permanent failure, which must be reported as such. */
export const PERMANENT_FAILURE = 'The content could not be generated (a failure the soak asked the fake for)';

export interface FaultyFake {
  fake: SimulatorHandle;
  injected(): number;
  stop(): Promise<void>;
}

/** A fake Segmind that keeps jobs QUEUED 3 s and PROCESSING 7 s, with faults; 1 in 100 jobs fails for good. */
export async function startFaultyFake(apiKey: string, work: string, rate: number): Promise<FaultyFake> {
  const fake = await startSimulator({ apiKey, mediaDir: join(work, 'media'), credits: 100_000, queueMs: 3000, processingMs: 7000 });
  let seen = 0;
  let injected = 0;
  const injector = setInterval(() => {
    const arrived = fake.requests.slice(seen);
    seen += arrived.length;
    for (const request of arrived) {
      if (Math.random() < 0.002) fake.failNextJob(PERMANENT_FAILURE);
      const route = routeOfPath(request.path.split('?')[0]!);
      const kinds = route && FAULTS[route];
      if (!kinds || Math.random() >= rate) continue;
      const fault = kinds[Math.floor(Math.random() * kinds.length)]!;
      const withReset = fault.kind === 'http' && fault.status === 429 ? { ...fault, headers: { 'x-rate-limit-reset-at-utc': new Date(Date.now() + 1000).toISOString() } } : fault;
      fake.faults.inject(route, withReset);
      injected++;
    }
  }, 100);
  return {
    fake,
    injected: () => injected,
    async stop() {
      clearInterval(injector);
      await fake.close();
    },
  };
}

export interface Calls {
  /** Prompt → the generation's global ID, for every accepted call. */
  accepted: Map<string, { id: string; key: string }>;
  rejected: Record<string, number>;
  /** Answers that told the client to come back later (HTTP 503, 429, a broken connection), each followed by a retry. */
  retried: Record<string, number>;
  latenciesMs: number[];
}

const MUTATION = 'mutation($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id } } ... on RateLimitedError { retryAfterSeconds } } }';

type Answer = { kind: 'accepted'; id: string } | { kind: 'retry'; reason: string; afterMs: number } | { kind: 'rejected'; reason: string };

async function callOnce(url: string, key: string, input: Record<string, unknown>): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ query: MUTATION, variables: { input } }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    return { kind: 'retry', reason: `no answer (${(error as Error).name})`, afterMs: 1000 };
  }
  const body = (await response.json().catch(() => ({}))) as { data?: { extendVideo?: { __typename: string; generation?: { id: string }; retryAfterSeconds?: number } } };
  const result = body.data?.extendVideo;
  if (result?.generation) return { kind: 'accepted', id: result.generation.id };
  if (result?.__typename === 'RateLimitedError') return { kind: 'retry', reason: 'RateLimitedError', afterMs: (result.retryAfterSeconds ?? 1) * 1000 };
  if (response.status === 503 || response.status === 502 || response.status === 504) {
    const after = Number(response.headers.get('retry-after') ?? '1');
    return { kind: 'retry', reason: `HTTP ${response.status}`, afterMs: (Number.isFinite(after) ? after : 1) * 1000 };
  }
  return { kind: 'rejected', reason: result?.__typename ?? `HTTP ${response.status}` };
}

/**
 * Fires `count` extendVideo calls over `keys`, each with its own idempotency key, and
 * retries them as a careful client would: after a 503 (with its Retry-After), a rate limit or a
 * broken connection, the same call (same idempotency key) is sent again, so it is recorded once.
 */
export async function fireMutations(
  url: () => string,
  keys: string[],
  count: number,
  options: { runId: string; spreadMs: number; onAccepted(prompt: string, accepted: { id: string; key: string }): void },
): Promise<Calls> {
  const calls: Calls = { accepted: new Map(), rejected: {}, retried: {}, latenciesMs: [] };
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      // Spread over spreadMs (0: all at once), so that calls also meet what happens meanwhile.
      if (options.spreadMs) await new Promise((resolve) => setTimeout(resolve, (i * options.spreadMs) / count));
      const prompt = `soak #${i}`;
      const key = keys[i % keys.length]!;
      const input = { videoUrl: 'https://videos.example/soak.mp4', prompt, quality: (['Q360P', 'Q540P', 'Q720P'] as const)[i % 3], idempotencyKey: `${options.runId}-${i}` };
      const t0 = performance.now();
      for (let attempt = 0; attempt < 120; attempt++) {
        const answer = await callOnce(url(), key, input);
        if (answer.kind === 'retry') {
          calls.retried[answer.reason] = (calls.retried[answer.reason] ?? 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, Math.min(answer.afterMs, 10_000)));
          continue;
        }
        calls.latenciesMs.push(performance.now() - t0);
        if (answer.kind === 'accepted') {
          calls.accepted.set(prompt, { id: answer.id, key });
          options.onAccepted(prompt, { id: answer.id, key });
        } else calls.rejected[answer.reason] = (calls.rejected[answer.reason] ?? 0) + 1;
        return;
      }
      calls.rejected['gave up retrying'] = (calls.rejected['gave up retrying'] ?? 0) + 1;
    }),
  );
  return calls;
}
