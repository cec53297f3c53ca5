import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/app.ts';
import { CancelGenerationDocument, ExtendVideoDocument, GenerationDocument, GenerationUpdatedDocument } from './gql/graphql.ts';
import { startStack, submissions, waitForQuietQueue, waitForTerminal, type Stack } from './helpers/stack.ts';

let stack: Stack;
beforeAll(async () => {
  // Long enough upstream processing to cancel in the middle of it.
  stack = await startStack({ segmind: { processingMs: 1500 } });
});
afterAll(() => stack?.close());

async function extend(target: Stack, prompt: string) {
  const result = await target.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt } });
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
  return extended.generation.id;
}

async function waitForUpstreamStatus(id: string, status: string) {
  for (let attempt = 0; attempt < 600; attempt++) {
    const generation = (await stack.execute(GenerationDocument, { id })).data!.generation!;
    if (generation.upstreamStatus === status) return generation;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never reached ${status}`);
}

describe('cancelGeneration', () => {
  it('cancels a QUEUED generation, after which no worker submits it', async () => {
    const idle = await startStack({ worker: false });
    try {
      const id = await extend(idle, 'queued then canceled');
      const canceled = (await idle.execute(CancelGenerationDocument, { id })).data!.cancelGeneration;
      expect(canceled).toMatchObject({ __typename: 'CancelGenerationSuccess', generation: { status: 'CANCELED' } });

      // Now let a worker at the queue: it must find the generation canceled and drop the step.
      const worker = await startApp({ ...idle.config, port: 0 }, { logger: idle.app.logger });
      try {
        await waitForQuietQueue(idle, id);
      } finally {
        await worker.close();
      }
      expect(submissions(idle)).toHaveLength(0);
      expect((await idle.execute(GenerationDocument, { id })).data!.generation!.status).toBe('CANCELED');
    } finally {
      await idle.close();
    }
  });

  it('cancels a RUNNING generation and ignores the result that arrives later', async () => {
    const id = await extend(stack, 'running then canceled');
    const events = await stack.subscribe(GenerationUpdatedDocument, { id });
    await waitForUpstreamStatus(id, 'PROCESSING');
    const canceled = (await stack.execute(CancelGenerationDocument, { id })).data!.cancelGeneration;
    expect(canceled).toMatchObject({ __typename: 'CancelGenerationSuccess', generation: { status: 'CANCELED' } });

    // The subscription ends with CANCELED.
    if (!(Symbol.asyncIterator in events)) throw new Error('not a stream');
    const statuses: string[] = [];
    for await (const event of events) statuses.push(event.data!.generationUpdated.status);
    expect(statuses.at(-1)).toBe('CANCELED');

    // Upstream finishes anyway; the late result must not revive the generation.
    const upstream = stack.segmind.jobs().find((job) => job.params.prompt === 'running then canceled')!;
    for (let attempt = 0; attempt < 100 && stack.segmind.jobs().find((j) => j.requestId === upstream.requestId)!.status !== 'COMPLETED'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitForQuietQueue(stack, id);
    const after = (await stack.execute(GenerationDocument, { id })).data!.generation!;
    expect(after.status).toBe('CANCELED');
    expect(after.video).toBeNull();
    expect(submissions(stack).filter((r) => (r.body as { prompt: string }).prompt === 'running then canceled')).toHaveLength(1);
    expect(stack.segmind.requests.filter((r) => r.path.startsWith('/outputs/') && upstream.outputUrl?.endsWith(r.path))).toHaveLength(0);
  });

  it('is idempotent', async () => {
    const id = await extend(stack, 'canceled twice');
    const first = (await stack.execute(CancelGenerationDocument, { id })).data!.cancelGeneration;
    const second = (await stack.execute(CancelGenerationDocument, { id })).data!.cancelGeneration;
    expect(first).toMatchObject({ __typename: 'CancelGenerationSuccess', generation: { status: 'CANCELED' } });
    expect(second).toEqual(first);
  });

  it('refuses a finished generation with NotCancelableError', async () => {
    const id = await extend(stack, 'finished');
    await waitForTerminal(stack, id);
    const result = (await stack.execute(CancelGenerationDocument, { id })).data!.cancelGeneration;
    expect(result).toMatchObject({ __typename: 'NotCancelableError', id, status: 'SUCCEEDED' });
  });

  it("answers NotFoundError for another key's generation and leaves it alone", async () => {
    const id = await extend(stack, 'not yours');
    const other = await stack.newKey('someone else');
    const result = (await stack.execute(CancelGenerationDocument, { id }, other)).data!.cancelGeneration;
    expect(result).toMatchObject({ __typename: 'NotFoundError', id });
    expect((await waitForTerminal(stack, id)).status).toBe('SUCCEEDED');
  });
});

describe('stalled generations', () => {
  it('a generation whose step was lost is picked up again by the sweeper and finishes', async () => {
    const env = { SWEEP_INTERVAL_MS: '200', STALL_AFTER_MS: '600' };
    const idle = await startStack({ worker: false, env });
    try {
      const id = await extend(idle, 'lost step');
      // Lose the step: as if its job had run out of retries while the database was away.
      const rawId = (await idle.app.db.generation.findFirstOrThrow()).id;
      expect(await idle.app.db.$executeRaw`DELETE FROM pgboss.job WHERE singleton_key = ${rawId}`).toBe(1);
      const worker = await startApp({ ...idle.config, port: 0 }, { logger: idle.app.logger, http: false });
      try {
        expect((await waitForTerminal(idle, id)).status).toBe('SUCCEEDED');
      } finally {
        await worker.close();
      }
      expect(submissions(idle)).toHaveLength(1);
    } finally {
      await idle.close();
    }
  });
});
