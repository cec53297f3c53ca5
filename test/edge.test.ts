// The HTTP/GraphQL edge against a real server and PostgreSQL: requests that once took the process
// down or answered with internal errors, statuses a GraphQL-over-HTTP client relies on, slow
// clients, and the metrics endpoint's token.

import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPERATION_NAME_LABELS } from '../src/http/request-metrics.ts';
import { ExtendVideoBriefDocument } from './gql/graphql.ts';
import { startStack, type Stack } from './helpers/stack.ts';

const METRICS_TOKEN = 'metrics-token-for-the-edge-tests';

let stack: Stack;
let otherKey: string;
/** Global ids of generations of the stack's key, and one of another key. */
const mine: string[] = [];
let theirs: string;

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    env: { MAX_ENTITY_REPRESENTATIONS: '500', HTTP_HEADERS_TIMEOUT_MS: '1500', HTTP_REQUEST_TIMEOUT_MS: '1500', METRICS_TOKEN },
    secrets: { 'the metrics token': METRICS_TOKEN },
  });
  otherKey = await stack.newKey('other');
  const create = async (prompt: string, key?: string) => {
    const result = (await stack.execute(ExtendVideoBriefDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt } }, key)).data!.extendVideo;
    if (result.__typename !== 'ExtendVideoSuccess') throw new Error(result.__typename);
    return result.generation.id;
  };
  for (let i = 0; i < 3; i++) mine.push(await create(`mine ${i}`));
  theirs = await create('theirs', otherKey);
});
afterAll(() => stack?.close());

interface Reply {
  status: number;
  headers: Headers;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
}

async function post(body: unknown, options: { key?: string | null; accept?: string } = {}): Promise<Reply> {
  const key = options.key === undefined ? stack.key : options.key;
  const response = await fetch(stack.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { 'x-api-key': key }), ...(options.accept && { accept: options.accept }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Reply['body'] };
}

/** Log lines at error level (pino 50+) written while `fn` ran: an internal error, with its stack. */
async function errorLogsDuring(fn: () => Promise<void>): Promise<string[]> {
  const from = stack.logs.length;
  await fn();
  await sleep(50);
  return stack.logs.slice(from).filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
}

const codes = (reply: Reply) => (reply.body.errors ?? []).map((error) => error.extensions?.code);

const ENTITIES = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Generation { id status } } }';
const representation = (id: string) => ({ __typename: 'Generation', id });

describe('federation: _entities is bounded', () => {
  it('a flood of representations (13 000, under the body limit) is refused before anything is resolved, and the server keeps answering', async () => {
    const flood = Array.from({ length: 13_000 }, () => representation(randomUUID()));
    const size = JSON.stringify({ query: ENTITIES, variables: { r: flood } }).length;
    expect(size).toBeGreaterThan(900_000);
    expect(size).toBeLessThan(stack.config.maxRequestBytes);
    const refused = await post({ query: ENTITIES, variables: { r: flood } });
    expect(refused.status).toBe(200);
    expect(codes(refused)).toEqual(['TOO_MANY_REPRESENTATIONS']);
    expect(refused.body.errors![0]!.message).toMatch(/At most 500 representations/);
    // Not executed at all: no data, not even a list of nulls.
    expect(refused.body).not.toHaveProperty('data');
    // One over the configured bound is refused too; the bound itself is not.
    const over = await post({ query: ENTITIES, variables: { r: Array.from({ length: 501 }, () => representation(mine[0]!)) } });
    expect(codes(over)).toEqual(['TOO_MANY_REPRESENTATIONS']);
    const atBound = await post({ query: ENTITIES, variables: { r: Array.from({ length: 500 }, () => representation(mine[0]!)) } });
    expect(atBound.body.errors).toBeUndefined();
    expect(atBound.body.data!._entities).toHaveLength(500);
    // Under application/graphql-response+json the refusal is a 400, like any request error.
    const strict = await post({ query: ENTITIES, variables: { r: flood.slice(0, 600) } }, { accept: 'application/graphql-response+json' });
    expect(strict.status).toBe(400);
    expect((await post({ query: '{ generations(first: 1) { totalCount } }' })).body.data).toEqual({ generations: { totalCount: 3 } });
  });

  it('representations count against the operation cost limit, by the fields selected on each', async () => {
    const wide = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Generation {
      id status prompt negativePrompt duration quality motionMode seed style idempotencyKey sourceVideoUrl upstreamStatus
      elapsedSeconds cost createdAt startedAt completedAt error { code message upstreamStatus } video { url byteSize }
    } } }`;
    const refused = await post({ query: wide, variables: { r: Array.from({ length: 400 }, () => representation(mine[0]!)) } });
    expect(codes(refused)).toEqual(['COST_LIMIT_EXCEEDED']);
    expect(refused.body).not.toHaveProperty('data');
    const fine = await post({ query: wide, variables: { r: Array.from({ length: 50 }, () => representation(mine[0]!)) } });
    expect(fine.body.errors).toBeUndefined();
  });

  it('a gateway-size list (50) resolves, each to the caller’s generation or null', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => (i % 5 === 4 ? theirs : i % 5 === 3 ? encodeGlobalID('Generation', randomUUID()) : mine[i % 3]!));
    const reply = await post({ query: ENTITIES, variables: { r: ids.map(representation) } });
    expect(reply.status).toBe(200);
    expect(reply.body.errors).toBeUndefined();
    const entities = reply.body.data!._entities as ({ id: string } | null)[];
    expect(entities).toHaveLength(50);
    entities.forEach((entity, i) => {
      if (i % 5 >= 3) expect(entity).toBeNull();
      else expect(entity).toMatchObject({ id: ids[i] });
    });
  });

  it('malformed representations are the client’s error (BAD_USER_INPUT) or null, never an internal error', async () => {
    const cases: unknown[][] = [
      [{ __typename: 'Nope', id: mine[0] }],
      [{ id: mine[0] }],
      [{ __typename: 42, id: mine[0] }],
      [{ __typename: 'Generation' }],
      [{ __typename: 'Generation', id: 5 }],
      [{ __typename: 'Generation', id: { nested: true } }],
      [{ __typename: 'Generation', id: 'not-a-global-id' }],
      [5],
      ['Generation'],
      [[representation(mine[0]!)]],
      [representation(mine[0]!), 'x'],
    ];
    const errors = await errorLogsDuring(async () => {
      for (const r of cases) {
        const reply = await post({ query: ENTITIES, variables: { r } });
        const context = JSON.stringify({ r, reply: reply.body });
        expect(reply.status, context).toBe(200);
        expect(codes(reply), context).not.toContain('INTERNAL_SERVER_ERROR');
        if (reply.body.errors) expect(codes(reply), context).toEqual(['BAD_USER_INPUT']);
        else expect(reply.body.data!._entities, context).toEqual([null]);
      }
      // The same as a literal in the document.
      const literal = await post({ query: '{ _entities(representations: [{ __typename: "Nope", id: "1" }, 7]) { __typename } }' });
      expect(codes(literal)).toEqual(['BAD_USER_INPUT']);
    });
    expect(errors).toEqual([]);
  });
});

describe('node(id:)', () => {
  it('answers null, without an error or an internal log line, for an id the key does not own, a made-up id, another type or garbage', async () => {
    const ids = [theirs, encodeGlobalID('Generation', randomUUID()), encodeGlobalID('Generation', 'x'), encodeGlobalID('Nope', '1'), 'garbage', '', '::::', 'R2VuZXJhdGlvbg=='];
    const errors = await errorLogsDuring(async () => {
      for (const id of ids) {
        const reply = await post({ query: 'query ($id: ID!) { node(id: $id) { __typename id } }', variables: { id } });
        expect(reply.body, id).toEqual({ data: { node: null } });
      }
    });
    expect(errors).toEqual([]);
    // The caller's own is still found.
    const own = await post({ query: 'query ($id: ID!) { node(id: $id) { __typename id } }', variables: { id: mine[0] } });
    expect(own.body).toEqual({ data: { node: { __typename: 'Generation', id: mine[0] } } });
  });
});

describe('generation ids in arguments', () => {
  it('take a global ID or a raw id; anything else names nothing: null or NotFoundError, naming the id as given, never a validation error', async () => {
    const { decodeGlobalID } = await import('@pothos/plugin-relay');
    const raw = decodeGlobalID(mine[1]!).id;
    const found = await post({ query: 'query ($a: ID!, $b: ID!) { a: generation(id: $a) { id } b: generation(id: $b) { id } }', variables: { a: mine[1], b: raw } });
    expect(found.body).toEqual({ data: { a: { id: mine[1] }, b: { id: mine[1] } } });
    const errors = await errorLogsDuring(async () => {
      for (const id of [theirs, encodeGlobalID('ApiKey', raw), encodeGlobalID('Generation', 'x'), 'garbage', '', '::::', 'R2VuZXJhdGlvbg==']) {
        const lookup = await post({ query: 'query ($id: ID!) { generation(id: $id) { id } }', variables: { id } });
        expect(lookup.body, id).toEqual({ data: { generation: null } });
        const cancel = await post({ query: 'mutation ($id: ID!) { cancelGeneration(id: $id) { __typename ... on NotFoundError { id } } }', variables: { id } });
        expect(cancel.body, id).toEqual({ data: { cancelGeneration: { __typename: 'NotFoundError', id } } });
        const remove = await post({ query: 'mutation ($id: ID!) { deleteGeneration(id: $id) { __typename ... on NotFoundError { id } } }', variables: { id } });
        expect(remove.body, id).toEqual({ data: { deleteGeneration: { __typename: 'NotFoundError', id } } });
      }
    });
    expect(errors).toEqual([]);
    // Without a key, a garbage id is still refused as unauthenticated first.
    const anonymous = await post({ query: 'mutation { cancelGeneration(id: "::::") { __typename } }' }, { key: null });
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('HTTP status of authentication errors', () => {
  it('partial data with an UNAUTHENTICATED error answers 200, for application/json and application/graphql-response+json', async () => {
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const reply = await post({ query: '{ __typename generation(id: "x") { id } }' }, { key: null, accept });
      expect(reply.status, accept).toBe(200);
      expect(reply.body.data).toEqual({ __typename: 'Query', generation: null });
      expect(codes(reply)).toEqual(['UNAUTHENTICATED']);
    }
  });

  it('a request refused as a whole (data null) answers 401', async () => {
    for (const accept of ['application/json', 'application/graphql-response+json']) {
      const reply = await post({ query: '{ generations(first: 1) { totalCount } }' }, { key: null, accept });
      expect(reply.status, accept).toBe(401);
      expect(reply.body.data ?? null).toBeNull();
      expect(codes(reply)).toEqual(['UNAUTHENTICATED']);
    }
  });
});

describe('list sizes are bounded', () => {
  it('generations(first:) and extensions(first:) give at most 100 per page, however many are asked for', async () => {
    const { decodeGlobalID } = await import('@pothos/plugin-relay');
    const sourceId = decodeGlobalID(mine[0]!).id;
    const { id: _id, plannedVideoId: _planned, upstreamRequestId: _upstream, ...row } = await stack.app.db.generation.findUniqueOrThrow({ where: { id: sourceId } });
    await stack.app.db.generation.createMany({
      data: Array.from({ length: 120 }, () => ({ ...row, id: randomUUID(), plannedVideoId: randomUUID(), sourceId, idempotencyKey: null, cost: null })),
    });
    // As variables: armor's cost limit multiplies by a literal `first`, so a literal 1000 is refused before this.
    const page = await post({ query: 'query ($n: Int) { generations(first: $n) { edges { cursor } } }', variables: { n: 1000 } });
    expect(page.body.errors).toBeUndefined();
    expect((page.body.data!.generations as { edges: unknown[] }).edges).toHaveLength(100);
    const reply = await post({ query: 'query ($id: ID!, $n: Int) { generation(id: $id) { extensions(first: $n) { totalCount edges { cursor } } } }', variables: { id: mine[0], n: 1000 } });
    expect(reply.body.errors).toBeUndefined();
    const extensions = (reply.body.data!.generation as { extensions: { totalCount: number; edges: unknown[] } }).extensions;
    expect(extensions.totalCount).toBe(120);
    expect(extensions.edges).toHaveLength(100);
  });
});

/** A raw client: sends `head`, then `trickle` one chunk every `everyMs`; resolves when the server closes the connection. */
function slowClient(head: string, trickle: string[], everyMs: number): Promise<{ closedAfterMs: number; sentChunks: number; received: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const { port } = new URL(stack.app.url);
    const socket = connect(Number(port), '127.0.0.1');
    let sent = 0;
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {}); // a reset counts as closed
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ closedAfterMs: Date.now() - started, sentChunks: sent, received });
    });
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent === trickle.length) return clearInterval(timer);
        if (!socket.destroyed) socket.write(trickle[sent++]!);
      }, everyMs);
    });
    setTimeout(() => reject(new Error('the server kept the connection open')), 20_000).unref();
  });
}

describe('slow clients (HTTP_HEADERS_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS are 1.5 s here)', () => {
  it('a client that trickles its headers is cut off', async () => {
    const result = await slowClient('POST /graphql HTTP/1.1\r\nHost: localhost\r\n', Array.from({ length: 40 }, (_, i) => `x-pad-${i}: y\r\n`), 200);
    expect(result.closedAfterMs).toBeLessThan(4000);
    expect(result.sentChunks).toBeLessThan(40);
    expect(result.received).toMatch(/^HTTP\/1\.1 408/);
  });

  it('a client that sends its headers, then trickles a JSON body, is cut off; the server keeps answering and logs no error', async () => {
    const body = JSON.stringify({ query: `{ generations(first: 1) { totalCount } } ${' '.repeat(200)}` });
    const head = `POST /graphql HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\nx-api-key: ${stack.key}\r\ncontent-length: ${body.length}\r\n\r\n`;
    let result: Awaited<ReturnType<typeof slowClient>> | undefined;
    const errors = await errorLogsDuring(async () => {
      result = await slowClient(head, body.match(/.{1,4}/gs)!, 200);
    });
    expect(result!.closedAfterMs).toBeLessThan(4000);
    expect(result!.sentChunks).toBeLessThan(body.length / 4);
    expect(result!.received).not.toMatch(/totalCount/);
    expect(errors).toEqual([]);
    expect((await post({ query: '{ __typename }' })).status).toBe(200);
  });

  it('an upload (multipart) may take longer than HTTP_REQUEST_TIMEOUT_MS', async () => {
    const boundary = 'edgeboundary';
    const operations = JSON.stringify({ query: '{ __typename }' });
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{}\r\n--${boundary}--\r\n`;
    const head = `POST /graphql HTTP/1.1\r\nHost: localhost\r\ncontent-type: multipart/form-data; boundary=${boundary}\r\nx-api-key: ${stack.key}\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n`;
    // About 3 s in all, twice the bound for other bodies.
    const chunks = body.match(new RegExp(`.{1,${Math.ceil(body.length / 15)}}`, 'gs'))!;
    const result = await slowClient(head, chunks, 200);
    expect(result.sentChunks).toBe(chunks.length);
    expect(result.closedAfterMs).toBeGreaterThan(2500);
    expect(result.received).toMatch(/^HTTP\/1\.1 200/);
    expect(result.received).toContain('"__typename":"Query"');
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  it('answers 401 without the bearer token or with a wrong one, and the metrics with it', async () => {
    const metrics = `${stack.app.url}/metrics`;
    const none = await fetch(metrics);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.text()).not.toContain('extendql_');
    for (const authorization of [`Bearer ${METRICS_TOKEN.slice(0, -1)}`, `Bearer ${METRICS_TOKEN}x`, `Basic ${METRICS_TOKEN}`, METRICS_TOKEN, 'Bearer ']) {
      expect((await fetch(metrics, { headers: { authorization } })).status, authorization).toBe(401);
    }
    const allowed = await fetch(metrics, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toMatch(/^extendql_queue_depth \d+$/m);
  });
});

describe('/metrics labels are bounded', () => {
  it('300 keyless requests, each with its own operation name and query string, add a bounded number of series and no url', async () => {
    const scrape = async () => (await fetch(`${stack.app.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const series = (text: string) => text.split('\n').filter((line) => /^graphql_(yoga_http_duration_count|envelop_error_result)\{/.test(line));
    const names = (text: string) => new Set(series(text).map((line) => /operationName="([^"]*)"/.exec(line)?.[1]));
    const before = series(await scrape()).length;
    for (let i = 0; i < 300; i++) {
      const name = `Flood_${i}_${randomUUID().replaceAll('-', '')}`;
      const response = await fetch(`${stack.graphqlUrl}?r=${randomUUID()}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-graphql-yoga-csrf': '1' },
        body: JSON.stringify({ query: `query ${name} { generation(id: "x") { id } }`, operationName: name }),
      });
      expect(response.status).toBe(200);
    }
    const text = await scrape();
    expect(text).not.toContain('?r=');
    expect(text).not.toMatch(/url="/);
    expect(names(text).size).toBeLessThanOrEqual(MAX_OPERATION_NAME_LABELS + 2); // and Anonymous, other
    expect(names(text)).toContain('other');
    // Two metrics, a few operation types, statuses and phases per name: far fewer than 300 new.
    expect(series(text).length - before).toBeLessThan(2 * (MAX_OPERATION_NAME_LABELS + 2) + 10);
  });
});

describe('ids no row can have (NUL, an unpaired surrogate) name nothing', () => {
  const bad = ['k\u0000', 'k\ud800', 'a\udc00b', encodeGlobalID('Generation', 'k\u0000'), encodeGlobalID('ApiKey', 'k\u0000')];

  it('generation, node, deleteGeneration, cancelGeneration and _entities answer what an unknown id answers, with no internal error', async () => {
    const logs = await errorLogsDuring(async () => {
      for (const p of bad) {
        const found = await post({ query: 'query ($p: ID!) { generation(id: $p) { id } node(id: $p) { id } }', variables: { p } });
        expect(found.body, JSON.stringify(p)).toEqual({ data: { generation: null, node: null } });
        const changed = await post({
          query: 'mutation ($p: ID!) { deleteGeneration(id: $p) { __typename } cancelGeneration(id: $p) { __typename } }',
          variables: { p },
        });
        expect(changed.body, JSON.stringify(p)).toEqual({ data: { deleteGeneration: { __typename: 'NotFoundError' }, cancelGeneration: { __typename: 'NotFoundError' } } });
        const entities = await post({ query: ENTITIES, variables: { r: [representation(p)] } });
        expect(entities.body, JSON.stringify(p)).toEqual({ data: { _entities: [null] } });
      }
    });
    expect(logs).toEqual([]);
  });

  it('generationUpdated over SSE and WebSocket answers NOT_FOUND', async () => {
    const query = 'subscription ($p: ID!) { generationUpdated(id: $p) { id } }';
    const logs = await errorLogsDuring(async () => {
      for (const p of bad) {
        const response = await fetch(stack.graphqlUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': stack.key },
          body: JSON.stringify({ query, variables: { p } }),
          signal: AbortSignal.timeout(5000),
        });
        const text = await response.text();
        expect(text, JSON.stringify(p)).toContain('NOT_FOUND');
        expect(text).not.toContain('INTERNAL_SERVER_ERROR');
      }
      const client = createClient({ url: stack.graphqlUrl.replace(/^http/, 'ws'), connectionParams: { 'x-api-key': stack.key }, lazy: true, retryAttempts: 0 });
      try {
        for (const p of bad) {
          const errors = await new Promise<unknown[]>((resolve) => {
            const seen: unknown[] = [];
            client.subscribe({ query, variables: { p } }, { next: (r) => seen.push(...(r.errors ?? [])), error: (e) => resolve([...seen, e]), complete: () => resolve(seen) });
          });
          expect(JSON.stringify(errors), JSON.stringify(p)).toContain('NOT_FOUND');
          expect(JSON.stringify(errors)).not.toContain('INTERNAL_SERVER_ERROR');
        }
      } finally {
        await client.dispose();
      }
    });
    expect(logs).toEqual([]);
  });
});

describe('node(id:) with an ApiKey id', () => {
  it("is null for any key but the caller's, and the caller's own key for its id", async () => {
    const viewer = await post({ query: '{ viewer { id } }' }, { key: otherKey });
    const othersId = (viewer.body.data!.viewer as { id: string }).id;
    const query = 'query ($p: ID!) { node(id: $p) { id } }';
    const logs = await errorLogsDuring(async () => {
      for (const p of [othersId, encodeGlobalID('ApiKey', 'x'), encodeGlobalID('ApiKey', '00000000-0000-0000-0000-000000000000')]) {
        expect((await post({ query, variables: { p } })).body, p).toEqual({ data: { node: null } });
      }
      const own = await post({ query, variables: { p: othersId } }, { key: otherKey });
      expect(own.body).toEqual({ data: { node: { id: othersId } } });
    });
    expect(logs).toEqual([]);
  });
});
