import { TERMINAL_STATUSES } from '../../src/generations/lifecycle.ts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { decodeGlobalID } from '@pothos/plugin-relay';
import type { ExecutionResult } from 'graphql';
import pg from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { startApp, type App } from '../../src/app.ts';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { VideoStorage } from '../../src/storage/storage.ts';
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from '../../src/upstream/simulator/index.ts';

/** Simulated MP4s are cached across test files: the same sizes are made once. */
const MEDIA_DIR = join(tmpdir(), 'extendql-test-media');

/** A fresh, empty database on the suite's PostgreSQL; the first start migrates it. */
export async function createTestDatabase(): Promise<string> {
  const admin = new URL(inject('adminDatabaseUrl'));
  const name = `extendql_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  admin.pathname = `/${name}`;
  return admin.toString();
}

export interface Stack {
  app: App;
  config: Config;
  /** The fake Segmind on 127.0.0.1. */
  segmind: SimulatorHandle;
  segmindKey: string;
  /** An API key of our own, created for this stack. */
  key: string;
  /** Every log line the server wrote. */
  logs: string[];
  graphqlUrl: string;
  newKey(name?: string): Promise<string>;
  /** Runs a typed operation over real HTTP, with `key` (or the stack's key; null for none). */
  execute<TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    key?: string | null,
  ): Promise<ExecutionResult<TResult>>;
  /** Subscribes over SSE. */
  subscribe<TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    key?: string | null,
  ): Promise<AsyncIterable<ExecutionResult<TResult>> | ExecutionResult<TResult>>;
  close(): Promise<void>;
}

export async function startStack(
  options: {
    segmind?: Partial<SimulatorOptions>;
    env?: Record<string, string>;
    worker?: boolean;
    /** Wraps the stack's video storage, e.g. to make writes fail. */
    wrapStorage?: (storage: VideoStorage) => VideoStorage;
    /** More values, by name, that no response or log line may contain (e.g. storage credentials). */
    secrets?: Record<string, string>;
  } = {},
): Promise<Stack> {
  const dataDir = await mkdtemp(join(tmpdir(), 'extendql-test-'));
  const segmindKey = `sk-test-${randomBytes(16).toString('hex')}`;
  const segmind = await startSimulator({ apiKey: segmindKey, mediaDir: MEDIA_DIR, queueMs: 50, processingMs: 150, ...options.segmind });
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const config = loadConfig({
    DATABASE_URL: await createTestDatabase(),
    SEGMIND_API_KEY: segmindKey,
    SEGMIND_BASE_URL: segmind.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    POLL_INTERVAL_MS: '100',
    POLL_MAX_INTERVAL_MS: '300',
    UPSTREAM_TIMEOUT_MS: '5000',
    NODE_ENV: 'test',
    // Per-key limits get their own tests; elsewhere they would only get in the way.
    RATE_LIMIT_PER_MINUTE: '10000',
    MAX_CONCURRENT_PER_KEY: '10000',
    // Fault tests in one file share a stack; only the circuit breaker's own test opens it.
    UPSTREAM_CIRCUIT_THRESHOLD: '1000',
    ...options.env,
  });
  const app = await startApp(config, { logger, worker: options.worker, wrapStorage: options.wrapStorage });
  const clientKeys: string[] = [];
  const newKey = async (name = 'test') => {
    const created = (await createApiKey(app.db, name)).key;
    clientKeys.push(created);
    return created;
  };
  const key = await newKey();
  // Everything the server said to a client, scanned for secrets when the stack closes.
  const responses: string[] = [];
  const graphqlUrl = `${app.url}/graphql`;

  const executorFor = (apiKey: string | null) =>
    buildHTTPExecutor({ endpoint: graphqlUrl, headers: apiKey ? { 'x-api-key': apiKey } : {} });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the public signatures above carry the types
  const run = async (document: TypedDocumentNode<any, any>, variables: unknown, apiKey: string | null | undefined) => {
    const result = await executorFor(apiKey === undefined ? key : apiKey)({ document, variables: variables as Record<string, unknown> });
    if (!(Symbol.asyncIterator in result)) {
      responses.push(JSON.stringify(result));
      return result;
    }
    return (async function* () {
      for await (const event of result) {
        responses.push(JSON.stringify(event));
        yield event;
      }
    })();
  };

  return {
    app,
    config,
    segmind,
    segmindKey,
    key,
    logs,
    graphqlUrl,
    newKey,
    execute: (async (document, variables, apiKey) => run(document, variables, apiKey)) as Stack['execute'],
    subscribe: (async (document, variables, apiKey) => run(document, variables, apiKey)) as Stack['subscribe'],
    async close() {
      await app.close();
      await segmind.close();
      await rm(dataDir, { recursive: true, force: true });
      // No response, log line or error of this stack may carry the Segmind key, a client key or options.secrets.
      const said = [...responses, ...logs].join('\n');
      const secrets: (readonly [name: string, secret: string])[] = [
        ['the Segmind key', segmindKey],
        ...clientKeys.map((k) => ['a client key', k] as const),
        ...Object.entries(options.secrets ?? {}),
      ];
      for (const [name, secret] of secrets) {
        if (said.includes(secret)) throw new Error(`${name} leaked into a response or log line`);
      }
    },
  };
}

export const TERMINAL = new Set<string>(TERMINAL_STATUSES);

/** Polls generation(id) until it is terminal. The bound only stops a broken run from hanging. */
export async function waitForTerminal(stack: Stack, id: string, key?: string) {
  const { GenerationDocument } = await import('../gql/graphql.ts');
  for (let attempt = 0; attempt < 600; attempt++) {
    const result = await stack.execute(GenerationDocument, { id }, key);
    const generation = result.data?.generation;
    if (generation && TERMINAL.has(generation.status)) return generation;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`generation ${id} did not finish`);
}

/** The requests the fake Segmind received that start a billable job. */
export const submissions = (stack: Stack) => stack.segmind.requests.filter((r) => r.method === 'POST' && r.path.includes('pixverse-5-extend'));

/** Waits until the job engine holds no unfinished step for the generation (given by its global ID). */
export async function waitForQuietQueue(stack: Stack, id: string) {
  const generationId = decodeGlobalID(id).id;
  for (let attempt = 0; attempt < 600; attempt++) {
    const rows = await stack.app.db.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM pgboss.job WHERE name = 'extend-video' AND singleton_key = ${generationId} AND state IN ('created', 'retry', 'active')`;
    if (Number(rows[0]!.n) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`steps of ${generationId} did not finish`);
}

/** Starts a generation of `videos.example` (or what `extra` says) and answers its global id; anything but success throws. */
export async function extendOk(stack: Stack, prompt: string, extra: Record<string, unknown> = {}, key?: string): Promise<string> {
  const { ExtendVideoDocument } = await import('../gql/graphql.ts');
  const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt, ...extra } }, key);
  const extended = result.data!.extendVideo;
  if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
  return extended.generation.id;
}
