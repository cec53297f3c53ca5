import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, GenerationProgressDocument, type GenerationProgressSubscription } from './gql/graphql.js';
import { startStack, type Stack } from './helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ segmind: { queueMs: 300, processingMs: 800 } });
});
afterAll(() => stack?.close());

/** Collects every event of one subscription over graphql-ws until the server completes it. */
function subscribeOverWebSocket(id: string, key: string | null) {
  const client = createClient({ url: stack.graphqlUrl.replace(/^http/, 'ws'), connectionParams: key ? { 'x-api-key': key } : {}, lazy: true, retryAttempts: 0 });
  const events: GenerationProgressSubscription[] = [];
  return new Promise<{ events: GenerationProgressSubscription[]; errors: unknown[] }>((resolve) => {
    const errors: unknown[] = [];
    client.subscribe<GenerationProgressSubscription>(
      { query: print(GenerationProgressDocument), variables: { id } },
      {
        next: (result) => {
          if (result.errors) errors.push(...result.errors);
          if (result.data) events.push(result.data);
        },
        error: (error) => {
          errors.push(error);
          void client.dispose();
          resolve({ events, errors });
        },
        complete: () => {
          void client.dispose();
          resolve({ events, errors });
        },
      },
    );
  });
}

describe('subscriptions over WebSocket (graphql-ws)', () => {
  it('streams progress (status, upstream state, elapsed time) until SUCCEEDED, with the key as a connection parameter', async () => {
    const created = (await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'over ws' } })).data!.extendVideo;
    if (created.__typename !== 'ExtendVideoSuccess') throw new Error(created.__typename);
    const { events, errors } = await subscribeOverWebSocket(created.generation.id, stack.key);
    expect(errors).toEqual([]);
    const updates = events.map((event) => event.generationUpdated);
    expect(updates.at(-1)).toMatchObject({ status: 'SUCCEEDED', upstreamStatus: 'COMPLETED' });
    expect(updates.at(-1)!.video?.url).toMatch(/\.mp4$/);
    expect(updates.some((update) => update.upstreamStatus === 'PROCESSING' || update.upstreamStatus === 'QUEUED')).toBe(true);
    const elapsed = updates.map((update) => update.elapsedSeconds);
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b));
  });

  it('refuses a subscriber without a key', async () => {
    const { events, errors } = await subscribeOverWebSocket('R2VuZXJhdGlvbjp4', null);
    expect(events.every((event) => event.generationUpdated == null)).toBe(true);
    expect(JSON.stringify(errors)).toMatch(/API key/);
  });
});
