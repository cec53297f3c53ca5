import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatorHandle } from '../src/upstream/simulator/index.ts';
import { ExtendVideoDocument, GenerationUpdatedDocument } from './gql/graphql.ts';
import { startChildServer, type ChildServer } from './helpers/child-server.ts';
import { startSharedBackend, type SharedBackend } from './helpers/shared-backend.ts';

let backend: SharedBackend;
let fake: SimulatorHandle;
let apiA: ChildServer;
let apiB: ChildServer;
let worker: ChildServer;
let key: string;

beforeAll(async () => {
  backend = await startSharedBackend('scale', { queueMs: 200, processingMs: 600 });
  ({ fake } = backend);
  // Two API instances that do no background work, and one worker with no HTTP server.
  apiA = await startChildServer({ ...backend.env, WORKER_ENABLED: 'false' });
  [apiB, worker] = await Promise.all([
    startChildServer({ ...backend.env, WORKER_ENABLED: 'false' }),
    startChildServer(backend.env, { entry: 'src/worker.ts' }),
  ]);
  key = await backend.newKey();
}, 120_000);

afterAll(() => backend?.close());

describe('several processes, one queue', () => {
  it('a generation started on A is processed by the worker, and a subscriber on B hears every change', async () => {
    const onA = buildHTTPExecutor({ endpoint: apiA.graphqlUrl, headers: { 'x-api-key': key } });
    const onB = buildHTTPExecutor({ endpoint: apiB.graphqlUrl, headers: { 'x-api-key': key } });

    // Segmind answers "still queued" until the subscriber on B has seen RUNNING, so the stream
    // cannot open after the changes it is meant to hear (each event re-reads the row, so a state
    // that passes quickly can be skipped).
    fake.faults.inject('status', { kind: 'flap' }, 100_000);
    const created = await onA({ document: ExtendVideoDocument, variables: { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'across instances' } } });
    if (Symbol.asyncIterator in created) throw new Error('expected a single result');
    const extended = created.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    const id = extended.generation.id;

    const events = await onB({ document: GenerationUpdatedDocument, variables: { id } });
    if (!(Symbol.asyncIterator in events)) throw new Error(`not a stream: ${JSON.stringify(events)}`);
    const statuses: string[] = [];
    for await (const event of events) {
      const status = event.data!.generationUpdated.status;
      statuses.push(status);
      if (status === 'RUNNING') fake.faults.clear();
    }
    // B does no work itself: every change after the first came from the worker through Redis.
    expect(statuses[0]).toMatch(/^(QUEUED|RUNNING)$/);
    expect(statuses).toContain('RUNNING');
    expect(statuses.at(-1)).toBe('SUCCEEDED');
    const order = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    expect(statuses.map((status) => order.indexOf(status))).toEqual(statuses.map((status) => order.indexOf(status)).sort());

    const rawId = decodeGlobalID(id).id;
    const workedBy = (server: ChildServer) => server.logs().some((line) => line.generationId === rawId && line.msg === 'generation succeeded');
    expect(workedBy(worker)).toBe(true);
    expect(workedBy(apiA) || workedBy(apiB)).toBe(false);
    for (const server of [apiA, apiB, worker]) expect(server.output()).not.toContain(key);
  });
});
