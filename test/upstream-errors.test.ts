import { decodeGlobalID } from '@pothos/plugin-relay';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { generationPayload } from '../src/webhooks/delivery.ts';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startStack, submissions, waitForTerminal, type Stack } from './helpers/stack.ts';

async function waitUntil(check: () => boolean | Promise<boolean>) {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('timed out');
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { UPSTREAM_TIMEOUT_MS: '1000' } });
});
afterAll(() => stack?.close());

/** Starts a generation and waits for its end; returns it with the submissions it caused. */
async function run(prompt: string) {
  const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt } });
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
  const generation = await waitForTerminal(stack, extended.generation.id);
  const sent = submissions(stack).filter((r) => (r.body as { prompt?: string }).prompt === prompt);
  return { generation, sent };
}

describe('upstream status codes on submit', () => {
  it.each([
    [400, 'UPSTREAM_BAD_REQUEST'],
    [401, 'UPSTREAM_UNAUTHORIZED'],
    [403, 'UPSTREAM_FORBIDDEN'],
    [404, 'UPSTREAM_NOT_FOUND'],
    [405, 'UPSTREAM_METHOD_NOT_ALLOWED'],
    [406, 'INSUFFICIENT_CREDITS'],
    [410, 'MODEL_RETIRED'],
    [422, 'UPSTREAM_VALIDATION'],
  ])('%i fails the generation as %s without retrying', async (status, code) => {
    stack.segmind.faults.inject('submit', { kind: 'http', status, body: status === 405 ? '<html>no</html>' : JSON.stringify({ error: `upstream says ${status}` }) });
    const { generation, sent } = await run(`status ${status}`);
    expect(generation.status).toBe('FAILED');
    expect(generation.error).toMatchObject({ code, upstreamStatus: status });
    if (status !== 405) expect(generation.error!.message).toContain(`upstream says ${status}`);
    expect(sent).toHaveLength(1);
  });

  it('401 blames the operator configuration, not the client, and never shows the key', async () => {
    stack.segmind.faults.inject('submit', { kind: 'http', status: 401, body: JSON.stringify({ error: `Unauthorized. API key ${stack.segmindKey} is invalid` }) });
    const { generation } = await run('bad key');
    expect(generation.error!.message).toContain('SEGMIND_API_KEY');
    expect(generation.error!.message).not.toContain(stack.segmindKey);
    expect(stack.logs.join('\n')).not.toContain(stack.segmindKey);
  });

  it('429 waits for x-rate-limit-reset-at-utc, then submits again and succeeds', async () => {
    const resetAt = new Date(Date.now() + 1200);
    stack.segmind.faults.inject('submit', { kind: 'http', status: 429, headers: { 'x-rate-limit-reset-at-utc': resetAt.toISOString() } });
    const { generation, sent } = await run('rate limited');
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at).toBeGreaterThanOrEqual(resetAt.getTime());
  });

  it.each([500, 502, 504])('%i is retried with backoff and then succeeds', async (status) => {
    stack.segmind.faults.inject('submit', { kind: 'http', status }, 2);
    const { generation, sent } = await run(`transient ${status}`);
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(3);
  });

  it('more consecutive 5xx than any fixed retry count only delay the generation', async () => {
    // A 20 s deadline caps the backoff at 2 s; the old fixed limit was 8 retries.
    const patient = await startStack({ env: { GENERATION_DEADLINE_MS: '20000' } });
    try {
      patient.segmind.faults.inject('submit', { kind: 'http', status: 502 }, 10);
      const result = await patient.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'long outage' } });
      const extended = result.data!.extendVideo;
      if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
      const generation = await waitForTerminal(patient, extended.generation.id);
      expect(generation.status).toBe('SUCCEEDED');
      expect(generation.retrying).toBeNull();
      expect(submissions(patient)).toHaveLength(11);
      expect(patient.segmind.jobs()).toHaveLength(1);
    } finally {
      await patient.close();
    }
  });

  it('a 5xx that lasts until GENERATION_DEADLINE_MS fails as UPSTREAM_UNAVAILABLE, named at the deadline', async () => {
    const short = await startStack({ env: { GENERATION_DEADLINE_MS: '2000' } });
    try {
      short.segmind.faults.inject('submit', { kind: 'http', status: 502 }, 1000);
      const startedAt = Date.now();
      const result = await short.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'down' } });
      const extended = result.data!.extendVideo;
      if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
      const generation = await waitForTerminal(short, extended.generation.id);
      expect(generation.status).toBe('FAILED');
      expect(generation.error!.code).toBe('UPSTREAM_UNAVAILABLE');
      expect(generation.error!.message).toContain('deadline');
      expect(generation.retrying).toBeNull();
      // Retried all along, and given up at the deadline (not before, not long after).
      expect(submissions(short).length).toBeGreaterThan(3);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1900);
      expect(Date.now() - startedAt).toBeLessThan(6000);
      expect(short.segmind.jobs()).toHaveLength(0);
    } finally {
      short.segmind.faults.clear();
      await short.close();
    }
  });

  it('a submit whose answer is lost is not sent again (it may have been billed)', async () => {
    stack.segmind.faults.inject('submit', { kind: 'drop', after: true } as never);
    const { generation, sent } = await run('lost answer');
    expect(generation.status).toBe('FAILED');
    expect(generation.error!.code).toBe('UPSTREAM_SUBMISSION_UNKNOWN');
    expect(sent).toHaveLength(1);
  });

  it('a submit that times out is not sent again either', async () => {
    stack.segmind.faults.inject('submit', { kind: 'delay', ms: 1500 });
    const { generation, sent } = await run('slow submit');
    expect(generation.error!.code).toBe('UPSTREAM_SUBMISSION_UNKNOWN');
    expect(sent).toHaveLength(1);
  });
});

describe('jobs that Segmind ran and failed', () => {
  it('a failed job (422 on /status) is GENERATION_FAILED with its own text, its cost, and upstreamStatus FAILED', async () => {
    stack.segmind.failNextJob('PixVerse could not extend this clip');
    const { generation, sent } = await run('fails upstream');
    expect(generation.status).toBe('FAILED');
    expect(generation.upstreamStatus).toBe('FAILED');
    expect(generation.error).toEqual({ code: 'GENERATION_FAILED', message: 'PixVerse could not extend this clip', upstreamStatus: 422 });
    const job = stack.segmind.jobs().find((j) => j.params.prompt === 'fails upstream')!;
    expect(job.status).toBe('FAILED');
    expect(generation.cost).toBe(job.cost);
    // /status carried the whole answer: the result was not fetched.
    expect(stack.segmind.requests.filter((r) => r.path === `/v2/requests/${job.requestId}`)).toHaveLength(0);
    expect(sent).toHaveLength(1);
  });

  it('a 422 on /status whose body says FAILED is the job failing, not a refused request', async () => {
    const body = JSON.stringify({ status: 'FAILED', error: 'Segmind says the job failed', metrics: { cost: 0, inference_time: 1.5 } });
    stack.segmind.faults.inject('status', { kind: 'http', status: 422, body });
    const { generation } = await run('status says failed');
    expect(generation.status).toBe('FAILED');
    expect(generation.upstreamStatus).toBe('FAILED');
    expect(generation.error).toEqual({ code: 'GENERATION_FAILED', message: 'Segmind says the job failed', upstreamStatus: 422 });
    expect(generation.cost).toBe(0);
  });
});

describe('codes an older version stored', () => {
  it('an error or retry code this version does not know answers UNKNOWN with its message, in the API and in the webhook payload', async () => {
    stack.segmind.faults.inject('submit', { kind: 'http', status: 400, body: JSON.stringify({ error: 'upstream says 400' }) });
    const { generation } = await run('an old row');
    const id = decodeGlobalID(generation.id).id;
    await stack.app.db.generation.update({
      where: { id },
      data: { errorCode: 'SOME_RETIRED_CODE', errorMessage: 'what happened then', retryCode: 'ANOTHER_RETIRED_CODE', retryMessage: 'waited then', retryAt: new Date() },
    });
    const response = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.key },
      body: JSON.stringify({ query: 'query ($id: ID!) { generation(id: $id) { error { code message upstreamStatus } retrying { code message } } }', variables: { id: generation.id } }),
    });
    expect(await response.json()).toEqual({
      data: {
        generation: {
          error: { code: 'UNKNOWN', message: 'what happened then', upstreamStatus: 400 },
          retrying: { code: 'UNKNOWN', message: 'waited then' },
        },
      },
    });
    const row = await stack.app.db.generation.findUniqueOrThrow({ where: { id }, include: { video: true } });
    expect(generationPayload(row, { publicId: (raw) => raw, videoUrl: (videoId) => videoId }).error).toEqual({ code: 'UNKNOWN', message: 'what happened then', upstreamStatus: 400 });
  });
});

describe('faults after submission', () => {
  it('status poll errors are retried without resubmitting', async () => {
    stack.segmind.faults.inject('status', { kind: 'http', status: 500 }, 2);
    const { generation, sent } = await run('poll errors');
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(1);
  });

  it('a status poll that times out is retried without resubmitting', async () => {
    stack.segmind.faults.inject('status', { kind: 'delay', ms: 1500 }); // UPSTREAM_TIMEOUT_MS is 1000 here
    const { generation, sent } = await run('poll timeout');
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(1);
  });

  it('dropped connections on status and result are retried without resubmitting', async () => {
    stack.segmind.faults.inject('status', { kind: 'drop' });
    stack.segmind.faults.inject('result', { kind: 'drop' });
    const { generation, sent } = await run('dropped polls');
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(1);
  });

  it('an expired v2 result (404) fails as UPSTREAM_NOT_FOUND', async () => {
    stack.segmind.faults.inject('status', { kind: 'http', status: 404, body: JSON.stringify({ error: 'Request not found' }) });
    const { generation, sent } = await run('expired');
    expect(generation.status).toBe('FAILED');
    expect(generation.error).toMatchObject({ code: 'UPSTREAM_NOT_FOUND', upstreamStatus: 404 });
    expect(sent).toHaveLength(1);
  });

  it('a truncated download is retried and the stored file is whole', async () => {
    stack.segmind.faults.inject('output', { kind: 'truncate' });
    const { generation } = await run('truncated once');
    expect(generation.status).toBe('SUCCEEDED');
    const bytes = Buffer.from(await (await fetch(generation.video!.url)).arrayBuffer());
    expect(bytes.length).toBe(generation.video!.byteSize);
  });

  it('a non-MP4 output fails as OUTPUT_NOT_MP4', async () => {
    stack.segmind.faults.inject('output', { kind: 'notMp4' }, 10);
    const { generation } = await run('not mp4');
    stack.segmind.faults.clear();
    expect(generation.status).toBe('FAILED');
    expect(generation.error!.code).toBe('OUTPUT_NOT_MP4');
  });

  it('an output URL that keeps answering 404 fails as OUTPUT_NOT_FOUND', async () => {
    stack.segmind.faults.inject('output', { kind: 'http', status: 404 }, 10);
    const { generation } = await run('output gone');
    stack.segmind.faults.clear();
    expect(generation.status).toBe('FAILED');
    expect(generation.error).toMatchObject({ code: 'OUTPUT_NOT_FOUND', upstreamStatus: 404 });
  });
});

describe('deadline and flapping', () => {
  it('status flapping does not confuse the worker', async () => {
    stack.segmind.faults.inject('status', { kind: 'flap' }, 3);
    const { generation, sent } = await run('flapping');
    expect(generation.status).toBe('SUCCEEDED');
    expect(sent).toHaveLength(1);
  });

  it('a generation still unfinished at GENERATION_DEADLINE_MS fails with DEADLINE_EXCEEDED', async () => {
    const slow = await startStack({ segmind: { processingMs: 60_000 }, env: { GENERATION_DEADLINE_MS: '1500' } });
    try {
      const result = await slow.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'too slow' } });
      const extended = result.data!.extendVideo;
      if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
      const generation = await waitForTerminal(slow, extended.generation.id);
      expect(generation.status).toBe('FAILED');
      expect(generation.error!.code).toBe('DEADLINE_EXCEEDED');
    } finally {
      await slow.close();
    }
  });
});

describe('the deadline never discards a result', () => {
  it('after an outage longer than the deadline, a job Segmind finished is collected and one it failed is recorded', async () => {
    const s = await startStack({ segmind: { processingMs: 800 } });
    let worker: App | undefined;
    try {
      const start = async (prompt: string) => {
        const result = await s.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt } });
        const extended = result.data!.extendVideo;
        if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
        const id = decodeGlobalID(extended.generation.id).id;
        await waitUntil(async () => (await s.app.db.generation.findUniqueOrThrow({ where: { id } })).upstreamRequestId !== null);
        return extended.generation.id;
      };
      const finished = await start('finished during the outage');
      s.segmind.failNextJob('PixVerse could not extend this clip');
      const failed = await start('failed during the outage');

      // The outage: no worker runs while both jobs end at Segmind and the deadline passes.
      await s.app.queue.stop({ graceful: true });
      await waitUntil(() => s.segmind.jobs().every((job) => job.status === 'COMPLETED' || job.status === 'FAILED'));
      await s.app.db.$executeRaw`UPDATE "Generation" SET "createdAt" = now() - interval '2 hours'`;
      const logger = pino({ level: 'debug' }, { write: (line: string) => void s.logs.push(line) });
      worker = await startApp(s.config, { logger, http: false });

      const done = await waitForTerminal(s, finished);
      expect(done.status).toBe('SUCCEEDED');
      expect(done.upstreamStatus).toBe('COMPLETED');
      expect(done.video!.byteSize).toBeGreaterThan(0);
      const ranAndFailed = await waitForTerminal(s, failed);
      expect(ranAndFailed.status).toBe('FAILED');
      expect(ranAndFailed.error).toMatchObject({ code: 'GENERATION_FAILED', message: 'PixVerse could not extend this clip' });
      expect(ranAndFailed.upstreamStatus).toBe('FAILED');
      expect(submissions(s)).toHaveLength(2);
    } finally {
      await worker?.close();
      await s.close();
    }
  });
});

describe('rate limits that reset after the deadline', () => {
  let short: Stack;
  beforeAll(async () => {
    short = await startStack({ env: { GENERATION_DEADLINE_MS: '4000' } });
  });
  afterAll(() => short?.close());

  const inADay = () => ({ 'x-rate-limit-reset-at-utc': new Date(Date.now() + 24 * 3600_000).toISOString() });

  it('a 429 on submit whose reset is a day away ends the generation as RATE_LIMITED, saying so, without waiting', async () => {
    short.segmind.faults.inject('submit', { kind: 'http', status: 429, headers: inADay() });
    const startedAt = Date.now();
    const result = await short.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'limited for a day' } });
    const extended = result.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    const generation = await waitForTerminal(short, extended.generation.id);
    expect(generation.status).toBe('FAILED');
    expect(generation.error!.code).toBe('RATE_LIMITED');
    expect(generation.error!.message).toMatch(/rate limit resets at .* after this generation's deadline/);
    expect(Date.now() - startedAt).toBeLessThan(4000);
    expect(short.segmind.jobs()).toHaveLength(0);
  });

  it('a 429 on a status poll whose reset is a day away ends the generation too', async () => {
    short.segmind.faults.inject('status', { kind: 'http', status: 429, headers: inADay() });
    const result = await short.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'polls limited for a day' } });
    const extended = result.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    const generation = await waitForTerminal(short, extended.generation.id);
    expect(generation.status).toBe('FAILED');
    expect(generation.error!.code).toBe('RATE_LIMITED');
    expect(generation.error!.message).toContain("after this generation's deadline");
    expect(submissions(short).filter((r) => (r.body as { prompt?: string }).prompt === 'polls limited for a day')).toHaveLength(1);
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive server failures, pauses calls, reports it in /ready, and closes again', async () => {
    const flaky = await startStack({ env: { UPSTREAM_CIRCUIT_THRESHOLD: '2', UPSTREAM_CIRCUIT_COOLDOWN_MS: '1500' } });
    try {
      flaky.segmind.faults.inject('submit', { kind: 'http', status: 503 }, 2);
      const result = await flaky.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'through an outage' } });
      const extended = result.data!.extendVideo;
      if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);

      let ready: Response | undefined;
      for (let attempt = 0; attempt < 100; attempt++) {
        ready = await fetch(`${flaky.app.url}/ready`);
        if (ready.status === 503) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(ready!.status).toBe(503);
      expect(await ready!.json()).toMatchObject({ upstream: 'open' });

      const generation = await waitForTerminal(flaky, extended.generation.id);
      expect(generation.status).toBe('SUCCEEDED');
      const sent = submissions(flaky);
      expect(sent).toHaveLength(3);
      // While open, nothing was sent: the third try waited out the cooldown.
      expect(sent[2]!.at - sent[1]!.at).toBeGreaterThanOrEqual(1500);
      expect((await fetch(`${flaky.app.url}/ready`)).status).toBe(200);
    } finally {
      await flaky.close();
    }
  });
});
