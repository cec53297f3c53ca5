import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument, GenerationProgressDocument, type GenerationProgressSubscription } from './gql/graphql.ts';
import { createFreshDatabase, killAllChildServers, startChildServer } from './helpers/child-server.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { RawSocket } from './helpers/ws-socket.ts';

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

const PROGRESS = 'subscription Progress($id: ID!) { generationUpdated(id: $id) { id status } }';

async function startGeneration(prompt: string): Promise<string> {
  const created = (await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt } })).data!.extendVideo;
  if (created.__typename !== 'ExtendVideoSuccess') throw new Error(created.__typename);
  return created.generation.id;
}

const statusesOf = (socket: RawSocket, id: string) =>
  socket.of(id).flatMap((message) => (message.type === 'next' ? [(message.payload as { data: { generationUpdated: { status: string } } }).data.generationUpdated.status] : []));

describe('hostile WebSocket clients', () => {
  it('closes a socket whose message is over MAX_REQUEST_BYTES with 1009, before executing it, and keeps serving others', async () => {
    const socket = await RawSocket.open(stack.graphqlUrl);
    const padding = ' '.repeat(stack.config.maxRequestBytes + 1);
    socket.subscribe('big', `{ __typename ${padding}}`);
    expect((await socket.closed).code).toBe(1009);
    expect(socket.of('big')).toEqual([]);

    const other = await RawSocket.open(stack.graphqlUrl, { 'x-api-key': stack.key });
    other.subscribe('1', '{ __typename }');
    await other.until(() => other.of('1').some((message) => message.type === 'complete'));
    expect(other.of('1')[0]).toMatchObject({ type: 'next', payload: { data: { __typename: 'Query' } } });
    other.close();
  });

  it('answers an operation without a key with an UNAUTHENTICATED error for its id, before executing it; introspection stays open', async () => {
    const socket = await RawSocket.open(stack.graphqlUrl);
    socket.subscribe('list', '{ generations(first: 1) { totalCount } }');
    socket.subscribe('schema', '{ __schema { queryType { name } } }');
    await socket.until(() => socket.of('list').length > 0 && socket.of('schema').some((message) => message.type === 'complete'));
    expect(socket.of('list')).toEqual([{ id: 'list', type: 'error', payload: [expect.objectContaining({ extensions: { code: 'UNAUTHENTICATED' } })] }]);
    expect(socket.of('schema')[0]).toMatchObject({ type: 'next', payload: { data: { __schema: { queryType: { name: 'Query' } } } } });
    expect(socket.open).toBe(true);
    socket.close();
  });

  it('takes the key from the upgrade request header too', async () => {
    const socket = await RawSocket.open(stack.graphqlUrl, {}, { 'x-api-key': stack.key });
    socket.subscribe('list', '{ generations(first: 1) { totalCount } }');
    await socket.until(() => socket.of('list').some((message) => message.type === 'complete'));
    expect(socket.of('list')[0]).toMatchObject({ type: 'next', payload: { data: { generations: { totalCount: expect.any(Number) } } } });
    socket.close();
  });

  it('refuses a connection whose key is unknown (4403), so the client does not retry', async () => {
    const socket = await RawSocket.open(stack.graphqlUrl, { 'x-api-key': 'xq_not-a-key-of-ours' });
    expect((await socket.closed).code).toBe(4403);
  });

  it('a malformed operation and one over the depth limit get errors for their own ids; the other subscriptions on the socket go on', async () => {
    const [first, second] = await Promise.all([startGeneration('first of two'), startGeneration('second of two')]);
    const socket = await RawSocket.open(stack.graphqlUrl, { 'x-api-key': stack.key });
    socket.subscribe('a', PROGRESS, { id: first });
    socket.subscribe('b', PROGRESS, { id: second });
    await socket.until(() => statusesOf(socket, 'a').length > 0 && statusesOf(socket, 'b').length > 0);

    socket.subscribe('syntax', 'subscription { generationUpdated(id: "x") { id ');
    const deep = `${'source { '.repeat(14)}id${' }'.repeat(14)}`;
    socket.subscribe('deep', `subscription { generationUpdated(id: "${first}") { ${deep} } }`);
    await socket.until(() => socket.of('syntax').length > 0 && socket.of('deep').length > 0);
    expect(socket.of('syntax')).toEqual([{ id: 'syntax', type: 'error', payload: [expect.objectContaining({ message: expect.stringMatching(/Syntax Error/) })] }]);
    expect(socket.of('deep')).toEqual([{ id: 'deep', type: 'error', payload: [expect.objectContaining({ message: expect.stringMatching(/depth/i) })] }]);

    await socket.until(() => ['a', 'b'].every((id) => socket.of(id).some((message) => message.type === 'complete')), 30_000);
    expect(statusesOf(socket, 'a').at(-1)).toBe('SUCCEEDED');
    expect(statusesOf(socket, 'b').at(-1)).toBe('SUCCEEDED');
    expect(socket.open).toBe(true);
    socket.close();
  });
});

describe('a WebSocket client that breaks the protocol, seen from the server process', () => {
  afterAll(killAllChildServers);

  it('is closed with 1009 for an oversize message and logged as one JSON line: nothing reaches stderr, no stack trace', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'extendql-ws-protocol-'));
    try {
      const server = await startChildServer({
        DATABASE_URL: await createFreshDatabase(),
        // Nothing is submitted here: an address that answers nothing will do.
        SEGMIND_API_KEY: 'sk-unused',
        SEGMIND_BASE_URL: 'http://127.0.0.1:9',
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: dataDir,
        MAX_REQUEST_BYTES: '4096',
        NODE_ENV: 'test',
      });
      for (let n = 0; n < 3; n++) {
        const socket = await RawSocket.open(server.graphqlUrl);
        socket.subscribe('big', `{ __typename ${' '.repeat(8192)}}`);
        expect((await socket.closed).code).toBe(1009);
      }
      await expect.poll(() => server.logs().filter((entry) => entry.msg === 'a WebSocket client broke the protocol; its socket is closed').length).toBe(3);
      expect(server.logs().find((entry) => entry.msg === 'a WebSocket client broke the protocol; its socket is closed')).toMatchObject({ level: 30, code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' });
      // Every line the process wrote is a JSON log line.
      expect(server.output().split('\n').filter((line) => line !== '' && !line.startsWith('{'))).toEqual([]);
      expect(server.output()).not.toMatch(/Internal error|\n\s+at /);
      await server.kill('SIGTERM');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
