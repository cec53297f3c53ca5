import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoBriefDocument } from './gql/graphql.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { RawSocket } from './helpers/ws-socket.ts';

const PROGRESS = 'subscription Progress($id: ID!) { generationUpdated(id: $id) { id status } }';

let stack: Stack;
let generationId: string;
beforeAll(async () => {
  // No worker: the generation stays QUEUED, so every subscription to it stays open.
  stack = await startStack({ env: { MAX_SUBSCRIPTIONS_PER_KEY: '2' }, worker: false });
  const created = (await stack.execute(ExtendVideoBriefDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'held' } })).data!.extendVideo;
  if (created.__typename !== 'ExtendVideoSuccess') throw new Error(created.__typename);
  generationId = created.generation.id;
});
afterAll(() => stack?.close());

interface SseStream {
  /** The first event's data, parsed. */
  first: Promise<{ data?: unknown; errors?: { extensions?: Record<string, unknown> }[] }>;
  abort(): void;
}

/** A subscription over Server-Sent Events, read with fetch until its first event. */
function subscribeOverSse(key: string): SseStream {
  const controller = new AbortController();
  const first = (async () => {
    const response = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': key },
      body: JSON.stringify({ query: PROGRESS, variables: { id: generationId } }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended: ${text}`);
      text += decoder.decode(value, { stream: true });
      const event = /^data: (.+)$/m.exec(text);
      if (event) return JSON.parse(event[1]!) as Awaited<SseStream['first']>;
    }
  })();
  first.catch(() => {});
  return { first, abort: () => controller.abort() };
}

/** Subscribes on `socket` as `id` and returns the first message for it. */
async function subscribeOverWebSocket(socket: RawSocket, id: string) {
  socket.subscribe(id, PROGRESS, { id: generationId });
  await socket.until(() => socket.of(id).length > 0);
  return socket.of(id)[0]!;
}

const refusal = { errors: [expect.objectContaining({ extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', max: 2 } })] };

describe('MAX_SUBSCRIPTIONS_PER_KEY', () => {
  it('counts SSE and WebSocket subscriptions of a key together, refuses the one too many on either transport, and frees a slot when one ends or its socket closes', async () => {
    const socket = await RawSocket.open(stack.graphqlUrl, { 'x-api-key': stack.key });
    expect(await subscribeOverWebSocket(socket, 'ws-1')).toMatchObject({ type: 'next', payload: { data: { generationUpdated: { status: 'QUEUED' } } } });
    const sse = subscribeOverSse(stack.key);
    expect(await sse.first).toMatchObject({ data: { generationUpdated: { status: 'QUEUED' } } });

    // The third, on either transport, is refused with a typed error; the open ones go on.
    expect(await subscribeOverWebSocket(socket, 'ws-2')).toMatchObject({ type: 'next', payload: refusal });
    expect(await subscribeOverSse(stack.key).first).toMatchObject(refusal);
    expect(socket.open).toBe(true);

    // Another key has its own allowance (it gets past the cap, to find the generation is not its own).
    const other = subscribeOverSse(await stack.newKey('other'));
    expect(await other.first).toMatchObject({ errors: [expect.objectContaining({ extensions: { code: 'NOT_FOUND' } })] });
    other.abort();

    // Ending the WebSocket subscription frees its slot at once.
    socket.send({ id: 'ws-1', type: 'complete' });
    expect(await subscribeOverWebSocket(socket, 'ws-3')).toMatchObject({ type: 'next', payload: { data: { generationUpdated: { status: 'QUEUED' } } } });

    // Now full again; closing the SSE stream frees its slot too.
    expect(await subscribeOverSse(stack.key).first).toMatchObject(refusal);
    sse.abort();
    await expect.poll(async () => (await subscribeOverSse(stack.key).first).data, { timeout: 5_000 }).toMatchObject({ generationUpdated: { status: 'QUEUED' } });

    // Full again; closing the socket frees the slots of its subscriptions.
    expect(await subscribeOverSse(stack.key).first).toMatchObject(refusal);
    socket.close();
    await socket.closed;
    await expect.poll(async () => (await subscribeOverSse(stack.key).first).data, { timeout: 5_000 }).toMatchObject({ generationUpdated: { status: 'QUEUED' } });
  });
});
