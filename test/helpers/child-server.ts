import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildHTTPExecutor } from '@graphql-tools/executor-http';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { ExecutionResult } from 'graphql';
import { createTestDatabase } from './stack.ts';

/** The project root: the child runs `src/server.ts` from here, as `npm start` would. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A fresh, empty database on the suite's PostgreSQL (the first server start migrates it). */
export const createFreshDatabase = createTestDatabase;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildServer {
  pid: number;
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  graphqlUrl: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The parsed JSON log lines written to stdout so far. */
  logs(): Record<string, unknown>[];
  /** Resolves once the process has exited (whatever the reason). */
  exited: Promise<ChildExit>;
  /** Sends a signal and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<ChildExit>;
}

/** Every process ever started here, so that a failing test can't leave one behind. */
const running = new Set<ChildProcess>();

/**
 * Starts `node src/server.ts` with exactly the given environment (plus PATH and HOME), and waits
 * until it has started: the "extendql is listening" log line, then "job engine started" (the
 * server listens before its job engine has started).
 */
export async function startChildServer(
  env: Record<string, string>,
  options: { startTimeoutMs?: number; entry?: 'src/server.ts' | 'src/worker.ts' } = {},
): Promise<ChildServer> {
  const entry = options.entry ?? 'src/server.ts';
  const child = spawn(process.execPath, [entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  let pending = '';
  const logs: Record<string, unknown>[] = [];
  let onListening: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => (onListening = resolve));
  let listeningUrl: string | undefined;

  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    output += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'extendql is listening' && typeof entry.url === 'string') listeningUrl = entry.url;
        if (entry.msg === 'job engine started' && listeningUrl) onListening(listeningUrl);
        if (entry.msg === 'extendql worker is running (no HTTP server)') onListening('');
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: string) => (output += chunk));

  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };

  const startTimeoutMs = options.startTimeoutMs ?? 45_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then((graphqlUrl) => ({ graphqlUrl })),
    exited.then((exit) => ({ exit })),
    new Promise<{ timeout: true }>((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), startTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (!('graphqlUrl' in outcome)) {
    await kill('SIGKILL');
    throw new Error(`the server did not start (${JSON.stringify(outcome)}):\n${output}`);
  }
  const graphqlUrl = outcome.graphqlUrl;
  return {
    pid: child.pid!,
    url: graphqlUrl.replace(/\/graphql$/, ''),
    graphqlUrl,
    output: () => output,
    logs: () => logs,
    exited,
    kill,
  };
}

/** SIGKILLs every child server still running; for afterEach/afterAll. */
export async function killAllChildServers(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  running.clear();
}

export type Execute = <TResult, TVariables>(
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
) => Promise<ExecutionResult<TResult>>;

/** Runs typed operations over real HTTP against a server, with an API key. */
export function executorFor(graphqlUrl: string, apiKey: string): Execute {
  const executor = buildHTTPExecutor({ endpoint: graphqlUrl, headers: { 'x-api-key': apiKey } });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the public signature above carries the types
  return (async (document: TypedDocumentNode<any, any>, variables: unknown) =>
    executor({ document, variables: variables as Record<string, unknown> })) as Execute;
}
