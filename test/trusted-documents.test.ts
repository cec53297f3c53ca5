import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { getIntrospectionQuery } from 'graphql';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import codegen from '../codegen.ts';
import {
  CliExtendVideoDocument,
  CliGenerationUpdatedDocument,
  CliHistoryDocument,
  type CliExtendVideoMutation,
  type CliGenerationUpdatedSubscription,
  type CliHistoryQuery,
} from '../src/cli/gql/graphql.ts';
import { GraphQLClient } from '../src/cli/client.ts';
import { readSse } from '../src/cli/sse.ts';
import { ConfigError } from '../src/config.ts';
import { loadTrustedDocuments, PROJECT_MANIFESTS } from '../src/http/trusted-documents.ts';
import { runCli } from './helpers/cli.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { RawSocket } from './helpers/ws-socket.ts';

const SOURCE_URL = 'https://videos.example/clip.mp4';
const idOf = (document: { __meta__?: Record<string, unknown> | undefined }) => document.__meta__!.hash as string;
const HISTORY = idOf(CliHistoryDocument);
const EXTEND = idOf(CliExtendVideoDocument);
const FOLLOW = idOf(CliGenerationUpdatedDocument);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** A document of a third-party client, trusted through TRUSTED_DOCUMENTS. */
const VIEWER = 'query Viewer { viewer { name } }';

interface Answer<TData = Record<string, unknown>> {
  status: number;
  data?: TData | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** One GraphQL request over real HTTP, as JSON (or, with `get`, in the URL). */
async function post<TData = Record<string, unknown>>(stack: Stack, body: Record<string, unknown>, options: { get?: boolean; accept?: string } = {}): Promise<Answer<TData>> {
  const headers = { 'x-api-key': stack.key, 'content-type': 'application/json', accept: options.accept ?? 'application/graphql-response+json' };
  const response = options.get
    ? await fetch(`${stack.graphqlUrl}?${new URLSearchParams(Object.entries(body).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]))}`, { headers })
    : await fetch(stack.graphqlUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, ...((await response.json()) as Omit<Answer<TData>, 'status'>) };
}

const codeOf = (answer: Answer<unknown>) => answer.errors?.map((error) => error.extensions?.code);

let open: Stack;
let strict: Stack;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extendql-trusted-'));
  const manifest = join(dir, 'third-party.json');
  await writeFile(manifest, JSON.stringify({ [`sha256:${sha256(VIEWER)}`]: VIEWER }));
  [open, strict] = await Promise.all([startStack(), startStack({ env: { ALLOW_ARBITRARY_OPERATIONS: 'false', TRUSTED_DOCUMENTS: manifest } })]);
});

afterAll(async () => {
  await Promise.all([open?.close(), strict?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('trusted documents, open (the default)', () => {
  it('runs a trusted document by its documentId (in the body or a GET URL) or by Apollo’s persistedQuery hash, and query text as before', async () => {
    const variables = { first: 5 };
    const byId = await post<CliHistoryQuery>(open, { documentId: HISTORY, variables });
    expect(byId).toEqual({ status: 200, data: { generations: { totalCount: 0, edges: [], pageInfo: { hasNextPage: false, endCursor: null } } } });
    expect(await post(open, { extensions: { persistedQuery: { version: 1, sha256Hash: HISTORY.slice('sha256:'.length) } }, variables })).toEqual(byId);
    expect(await post(open, { documentId: HISTORY, variables }, { get: true })).toEqual(byId);
    expect(await post(open, { query: '{ generations(first: 1) { totalCount } }' })).toEqual({ status: 200, data: { generations: { totalCount: 0 } } });
  });

  it('answers an unknown id with PERSISTED_QUERY_NOT_FOUND (send the text instead), and a request with neither with BAD_REQUEST', async () => {
    const unknown = await post(open, { documentId: `sha256:${'0'.repeat(64)}`, variables: {} });
    expect(unknown).toEqual({
      status: 400,
      errors: [{ message: 'This documentId is not among the trusted documents of this server: send the query text instead', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }],
    });
    const neither = await post(open, { variables: {} });
    expect(neither.status).toBe(400);
    expect(neither.errors).toEqual([{ message: 'Send a query, or the documentId of a trusted document', extensions: { code: 'BAD_REQUEST' } }]);
  });
});

/**
 * A proxy to `stack` that stands for a server which does not know the CLI's document ids:
 * extendql of another version (PERSISTED_QUERY_NOT_FOUND) or a GraphQL Yoga server without trusted
 * documents (which refuses the parameter). Text goes through, event streams too.
 */
async function startProxy(stack: Stack, refusal: 'not-found' | 'unexpected-parameter') {
  const seen: ('id' | 'text')[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if ((JSON.parse(body) as { documentId?: string }).documentId !== undefined) {
      seen.push('id');
      const [message, code] =
        refusal === 'not-found' ? ['PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND'] : ['Unexpected parameter "documentId" in the request body.', 'BAD_REQUEST'];
      const refused = JSON.stringify({ errors: [{ message, extensions: { code } }] });
      // As yoga refuses a request that asked for an event stream: the error is the stream's one event.
      if (req.headers.accept === 'text/event-stream') res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`event: next\ndata: ${refused}\n\nevent: complete\ndata:\n\n`);
      else res.writeHead(400, { 'content-type': 'application/json' }).end(refused);
      return;
    }
    seen.push('text');
    const headers = Object.fromEntries(['content-type', 'accept', 'x-api-key'].map((name) => [name, String(req.headers[name] ?? '')]));
    const answer = await fetch(stack.graphqlUrl, { method: 'POST', headers, body });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
    Readable.fromWeb(answer.body as WebReadableStream<Uint8Array>).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, seen, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('the CLI against a server that does not know its document ids', () => {
  it.each(['not-found', 'unexpected-parameter'] as const)('sends the text once refused (%s), and only text after that', async (refusal) => {
    const proxy = await startProxy(open, refusal);
    try {
      const env = { EXTENDQL_URL: proxy.url, EXTENDQL_API_KEY: open.key };
      const out = join(dir, `fallback-${refusal}.mp4`);
      const run = await runCli(['extend', '--video-url', SOURCE_URL, '--prompt', 'through an older server', '--out', out, '--json'], { cwd: dir, env });
      expect(run.stderr).toMatch(/SUCCEEDED/);
      expect(run.code).toBe(0);
      expect((JSON.parse(run.stdout) as { generation: { status: string } }).generation.status).toBe('SUCCEEDED');
      // The mutation by id, refused; then the mutation and the subscription as text.
      expect(proxy.seen).toEqual(['id', 'text', 'text']);
    } finally {
      await proxy.close();
    }
  });

  it('sends a subscription as text once its id is refused in the event stream', async () => {
    const created = await post<CliExtendVideoMutation>(open, { documentId: EXTEND, variables: { input: { videoUrl: SOURCE_URL, prompt: 'followed as text' } } });
    const extend = created.data!.extendVideo;
    if (extend.__typename !== 'ExtendVideoSuccess') throw new Error(extend.__typename);
    const proxy = await startProxy(open, 'not-found');
    try {
      const client = new GraphQLClient({ endpoint: new URL(proxy.url), apiKey: open.key, signal: new AbortController().signal });
      const statuses: string[] = [];
      for await (const data of client.subscribe(CliGenerationUpdatedDocument, { id: extend.generation.id })) statuses.push(data.generationUpdated.status);
      expect(statuses.at(-1)).toBe('SUCCEEDED');
      expect(proxy.seen).toEqual(['id', 'text']);
    } finally {
      await proxy.close();
    }
  });
});

describe('trusted documents, allowlist mode (ALLOW_ARBITRARY_OPERATIONS=false)', () => {
  it('runs trusted documents by id, and refuses query text with a typed error before anything runs', async () => {
    const history = await post<CliHistoryQuery>(strict, { documentId: HISTORY, variables: { first: 5 } });
    expect(history.status).toBe(200);
    expect(history.data!.generations.totalCount).toBe(0);

    const refused = await post(strict, {
      query: `mutation { extendVideo(input: { videoUrl: "${SOURCE_URL}", prompt: "not trusted" }) { __typename } }`,
    });
    expect(refused).toEqual({
      status: 400,
      errors: [
        {
          message: 'This server runs only its trusted documents: send the documentId of one instead of query text (introspection excepted)',
          extensions: { code: 'PERSISTED_QUERY_ID_REQUIRED' },
        },
      ],
    });
    expect(await strict.app.db.generation.count()).toBe(0);
    expect(codeOf(await post(strict, { query: '{ generations(first: 1) { totalCount } }' }, { get: true }))).toEqual(['PERSISTED_QUERY_ID_REQUIRED']);

    const unknown = await post(strict, { documentId: `sha256:${'0'.repeat(64)}` });
    expect(unknown).toEqual({ status: 400, errors: [{ message: 'This documentId is not among the trusted documents of this server', extensions: { code: 'PERSISTED_QUERY_NOT_IN_LIST' } }] });
  });

  it('answers introspection as text (GraphiQL’s schema, codegen from the URL), but not mixed with other fields or operations', async () => {
    const introspection = await post<{ __schema: { queryType: { name: string } } }>(strict, { query: getIntrospectionQuery() });
    expect(introspection.status).toBe(200);
    expect(introspection.data!.__schema.queryType.name).toBe('Query');
    expect(codeOf(await post(strict, { query: '{ __typename generations(first: 1) { totalCount } }' }))).toEqual(['PERSISTED_QUERY_ID_REQUIRED']);
    const smuggled = 'query Schema { __schema { queryType { name } } } query Mine { generations(first: 1) { totalCount } }';
    expect(codeOf(await post(strict, { query: smuggled, operationName: 'Schema' }))).toEqual(['PERSISTED_QUERY_ID_REQUIRED']);
  });

  it('keeps /health, /ready and the GraphiQL page answering', async () => {
    expect((await fetch(`${strict.app.url}/health`)).status).toBe(200);
    expect((await fetch(`${strict.app.url}/ready`)).status).toBe(200);
    const page = await fetch(strict.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');
  });

  it('trusts the documents of a manifest given in TRUSTED_DOCUMENTS too', async () => {
    expect(await post(strict, { documentId: `sha256:${sha256(VIEWER)}` })).toEqual({ status: 200, data: { viewer: { name: 'test' } } });
  });

  /** Every result of a subscription over SSE, until the server completes it. */
  async function overSse<TData>(body: Record<string, unknown>): Promise<Omit<Answer<TData>, 'status'>[]> {
    const response = await fetch(strict.graphqlUrl, {
      method: 'POST',
      headers: { 'x-api-key': strict.key, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
    });
    const results: Omit<Answer<TData>, 'status'>[] = [];
    for await (const event of readSse(response.body!)) {
      if (event.event === 'complete') break;
      results.push(JSON.parse(event.data) as Omit<Answer<TData>, 'status'>);
    }
    return results;
  }

  it('streams a subscription by id over SSE and WebSocket, and refuses one sent as text on both', async () => {
    const created = await post<CliExtendVideoMutation>(strict, { documentId: EXTEND, variables: { input: { videoUrl: SOURCE_URL, prompt: 'followed by id' } } });
    const extend = created.data!.extendVideo;
    if (extend.__typename !== 'ExtendVideoSuccess') throw new Error(extend.__typename);
    const id = extend.generation.id;

    const byId = await overSse<CliGenerationUpdatedSubscription>({ documentId: FOLLOW, variables: { id } });
    expect(byId.at(-1)!.data!.generationUpdated).toMatchObject({ id, status: 'SUCCEEDED' });
    // Refused before it starts: the stream's one event is the error.
    const asText = await overSse({ query: 'subscription($id: ID!) { generationUpdated(id: $id) { status } }', variables: { id } });
    expect(asText.map((result) => codeOf({ status: 0, ...result }))).toEqual([['PERSISTED_QUERY_ID_REQUIRED']]);

    const socket = await RawSocket.open(strict.graphqlUrl, { 'x-api-key': strict.key });
    try {
      // graphql-ws requires a query string: "" with the id.
      socket.send({ id: 'by-id', type: 'subscribe', payload: { query: '', documentId: FOLLOW, variables: { id } } });
      await socket.until(() => socket.of('by-id').some((message) => message.type === 'complete'));
      const last = socket.of('by-id').filter((message) => message.type === 'next').at(-1)!.payload as { data: CliGenerationUpdatedSubscription };
      expect(last.data.generationUpdated).toMatchObject({ id, status: 'SUCCEEDED' });

      socket.subscribe('as-text', 'subscription($id: ID!) { generationUpdated(id: $id) { status } }', { id });
      await socket.until(() => socket.of('as-text').length > 0);
      expect(socket.of('as-text')).toEqual([{ id: 'as-text', type: 'error', payload: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_QUERY_ID_REQUIRED' }) })] }]);
      socket.send({ id: 'unknown', type: 'subscribe', payload: { query: '', documentId: `sha256:${'0'.repeat(64)}` } });
      await socket.until(() => socket.of('unknown').length > 0);
      expect(socket.of('unknown')[0]!.payload).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'PERSISTED_QUERY_NOT_IN_LIST' }) })]);
      expect(socket.open).toBe(true);
    } finally {
      socket.close();
    }
  });

  it('runs the whole CLI journey: upload, live progress, download, history', async () => {
    const sample = join(dir, 'beach.mp4');
    await writeFile(sample, Buffer.from(await (await fetch(`${strict.app.url}/samples/beach.mp4`)).arrayBuffer()));
    const env = { EXTENDQL_URL: strict.graphqlUrl, EXTENDQL_API_KEY: strict.key };
    const out = join(dir, 'strict.mp4');
    const run = await runCli(['extend', '--video', sample, '--prompt', 'in allowlist mode', '--out', out], { cwd: dir, env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Uploading /);
    expect(run.stdout).toMatch(/SUCCEEDED/);
    const id = /^Generation (\S+) accepted/m.exec(run.stdout)![1]!;
    expect((await readFile(out)).subarray(4, 8).toString('latin1')).toBe('ftyp');

    const download = await runCli(['download', id, '--out', join(dir, 'strict-again.mp4')], { cwd: dir, env });
    expect(download.code).toBe(0);
    expect((await readFile(join(dir, 'strict-again.mp4'))).equals(await readFile(out))).toBe(true);
    const cancel = await runCli(['cancel', id, '--json'], { cwd: dir, env });
    expect(JSON.parse(cancel.stdout)).toMatchObject({ error: { type: 'NotCancelableError', status: 'SUCCEEDED' } });
    const history = await runCli(['history', '--json'], { cwd: dir, env });
    expect((JSON.parse(history.stdout) as { generations: { id: string }[] }).generations.map((g) => g.id)).toContain(id);
  });
});

describe('the manifest', () => {
  const logger = pino({ level: 'silent' });

  it('holds every codegen output that makes persisted documents (the CLI’s now, the studio’s when it comes)', () => {
    const outputs = Object.entries(codegen.generates).filter(([, output]) => {
      const preset = (output as { presetConfig?: { persistedDocuments?: unknown } }).presetConfig;
      return preset?.persistedDocuments !== undefined && preset.persistedDocuments !== false;
    });
    expect(outputs.map(([path]) => path)).toContain('src/cli/gql/');
    for (const [path] of outputs) expect(PROJECT_MANIFESTS).toContain(`${path}persisted-documents.json`);
  });

  it('has the id the README’s curl example sends', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(/"documentId":"(sha256:[0-9a-f]{64})"/.exec(readme)?.[1]).toBe(HISTORY);
  });

  it('stops the start on a manifest that cannot be read, whose ids do not hash to their text, or that gives one id two texts', async () => {
    const load = (manifests: string[]) => loadTrustedDocuments({ allowArbitraryOperations: false, manifests }, logger);
    await expect(load([join(dir, 'missing.json')])).rejects.toThrow(ConfigError);
    const wrong = join(dir, 'wrong.json');
    await writeFile(wrong, JSON.stringify({ [`sha256:${sha256('query A { viewer { name } }')}`]: 'query B { viewer { name } }' }));
    await expect(load([wrong])).rejects.toThrow(/wrong\.json: the text of sha256:\w+ does not hash to its id/);
    const [first, second] = [join(dir, 'one.json'), join(dir, 'two.json')];
    await writeFile(first, JSON.stringify({ viewer: 'query A { viewer { name } }' }));
    await writeFile(second, JSON.stringify({ viewer: 'query B { viewer { name } }' }));
    await expect(load([first, second])).rejects.toThrow(/viewer names two different documents/);

    const trusted = await load([first]);
    expect(trusted.documentOf(HISTORY)).toBeDefined();
    expect(trusted.documentOf('viewer')).toBe('query A { viewer { name } }');
  });
});
