import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/client.ts';
import type { SimulatorHandle } from '../src/upstream/simulator/index.ts';
import { ExtendVideoBriefDocument } from './gql/graphql.ts';
import { executorFor, startChildServer, type ChildServer } from './helpers/child-server.ts';
import type { RedisServer } from './helpers/redis.ts';
import { startSharedBackend, type SharedBackend } from './helpers/shared-backend.ts';
import { RawSocket } from './helpers/ws-socket.ts';

const PROGRESS = 'subscription Progress($id: ID!) { generationUpdated(id: $id) { id status } }';

let backend: SharedBackend;
let fake: SimulatorHandle;
let redis: RedisServer;
let db: Db;
let apiA: ChildServer;
let apiB: ChildServer;
let key: string;

beforeAll(async () => {
  backend = await startSharedBackend('redis-outage', { queueMs: 100, processingMs: 300 });
  ({ fake, redis, db } = backend);
  // A serves the subscriber and does no background work; B works the queue.
  apiA = await startChildServer({ ...backend.env, WORKER_ENABLED: 'false' });
  apiB = await startChildServer(backend.env);
  key = await backend.newKey();
}, 120_000);

afterAll(() => backend?.close());

const statusesOf = (socket: RawSocket, id: string) =>
  socket.of(id).flatMap((message) => (message.type === 'next' ? [(message.payload as { data: { generationUpdated: { status: string } } }).data.generationUpdated.status] : []));

const ready = async (server: ChildServer) => {
  const response = await fetch(`${server.url}/ready`);
  return { status: response.status, body: await response.text() };
};

describe('a Redis outage', () => {
  it('crashes nothing, shows in /ready, and a subscriber whose generation finished during it still gets SUCCEEDED', async () => {
    expect((await ready(apiA)).status).toBe(200);
    // Segmind answers "still queued" until the outage has begun, so the generation ends during it.
    fake.faults.inject('status', { kind: 'flap' }, 100_000);
    const created = (await executorFor(apiA.graphqlUrl, key)(ExtendVideoBriefDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'through an outage' } }))
      .data!.extendVideo;
    if (created.__typename !== 'ExtendVideoSuccess') throw new Error(created.__typename);
    const id = created.generation.id;

    const socket = await RawSocket.open(apiA.graphqlUrl, { 'x-api-key': key });
    socket.subscribe('s', PROGRESS, { id });
    // RUNNING reached A from B's worker through Redis.
    await socket.until(() => statusesOf(socket, 's').includes('RUNNING'));

    await redis.kill();
    await expect.poll(() => ready(apiA), { timeout: 10_000 }).toEqual({ status: 503, body: expect.stringContaining('"redis":"unavailable"') });
    expect((await ready(apiA)).body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Error/);

    // A mutation while Redis is down is answered (its event is simply not published).
    const during = (await executorFor(apiA.graphqlUrl, key)(ExtendVideoBriefDocument, { input: { videoUrl: 'https://videos.example/b.mp4', prompt: 'during the outage' } }))
      .data!.extendVideo;
    expect(during.__typename).toBe('ExtendVideoSuccess');

    // B's worker finishes the generation while Redis is down; A cannot hear of it yet.
    fake.faults.clear();
    const rawId = decodeGlobalID(id).id;
    await expect.poll(async () => (await db.generation.findUniqueOrThrow({ where: { id: rawId } })).status, { timeout: 20_000 }).toBe('SUCCEEDED');
    expect(statusesOf(socket, 's')).not.toContain('SUCCEEDED');

    await redis.restart();
    await socket.until(() => socket.of('s').some((message) => message.type === 'complete'), 20_000);
    expect(statusesOf(socket, 's').at(-1)).toBe('SUCCEEDED');
    socket.close();

    for (const server of [apiA, apiB]) {
      expect(server.output()).not.toMatch(/Unhandled|unhandled/);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      expect(await Promise.race([server.exited.then(() => 'exited'), Promise.resolve('running')])).toBe('running');
    }
    await expect.poll(() => ready(apiA), { timeout: 10_000 }).toMatchObject({ status: 200 });
    // The outage is logged once per connection, not at every reconnect attempt.
    const outage = apiA.logs().filter((line) => line.msg === 'Redis is unreachable: subscription events pause until it is back');
    expect(outage.map((line) => line.redis).sort()).toEqual(['publish', 'subscribe']);
    expect(apiA.logs().filter((line) => line.msg === 'Redis is back: open subscriptions re-read their generations')).toEqual([
      expect.objectContaining({ subscriptions: 1 }),
    ]);
  });
});
