import { CliError, InterruptedError } from './errors.ts';
import { clean } from './format.ts';
import type { TypedDocumentString } from './gql/graphql.ts';
import { readSse } from './sse.ts';

/** The CLI's own typed documents (src/cli/documents.graphql, compiled into ./gql). */
export type Document<TResult, TVariables> = TypedDocumentString<TResult, TVariables>;

export interface ClientOptions {
  endpoint: URL;
  apiKey: string | undefined;
  /** Aborts every request (Ctrl-C). */
  signal: AbortSignal;
}

interface GraphQLErrorJson {
  message: string;
  extensions?: { code?: unknown };
}

interface ExecutionResultJson {
  data?: unknown;
  errors?: GraphQLErrorJson[];
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function asExecutionResult(value: unknown): ExecutionResultJson | undefined {
  if (!isRecord(value) || !('data' in value || 'errors' in value)) return undefined;
  const { errors } = value;
  if (errors !== undefined && !(Array.isArray(errors) && errors.every((e) => isRecord(e) && typeof e.message === 'string'))) return undefined;
  return value as ExecutionResultJson;
}

/** A subscription stream that ended before its `complete` event: the connection was lost. */
export class StreamInterruptedError extends CliError {
  override name = 'StreamInterruptedError';
  constructor(where: string) {
    super(`The connection to ${where} was lost`, { type: 'NetworkError' }, undefined, true);
  }
}

/** Why fetch failed, from its cause (e.g. "connect ECONNREFUSED 127.0.0.1:4000"). */
function networkReason(error: unknown): string {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  if (cause instanceof Error) {
    const code = 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
    return cause.message || code || cause.name;
  }
  return String(cause);
}

/** GraphQL over HTTP with fetch: queries and mutations as JSON, subscriptions as server-sent events. */
export class GraphQLClient {
  /** The endpoint as errors name it: no credentials, query or fragment. */
  readonly where: string;

  private readonly options: ClientOptions;
  constructor(options: ClientOptions) {
    this.options = options;
    this.where = `${options.endpoint.origin}${options.endpoint.pathname}`;
  }

  /** Runs a query or mutation; GraphQL errors become CliErrors. */
  async request<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables): Promise<TResult> {
    const response = await this.post(document, variables, 'application/graphql-response+json, application/json');
    return this.dataOf<TResult>(await this.readJson(response));
  }

  /** Runs a subscription over SSE: each result's data, until the server completes the stream. */
  async *subscribe<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables): AsyncGenerator<TResult, void, undefined> {
    const response = await this.post(document, variables, 'text/event-stream');
    if (!response.headers.get('content-type')?.includes('text/event-stream') || !response.body) {
      // Refused before it started (e.g. a bad request): one plain result.
      yield this.dataOf<TResult>(await this.readJson(response));
      return;
    }
    try {
      for await (const event of readSse(response.body)) {
        if (event.event === 'complete') return;
        if (event.event === 'next') yield this.dataOf<TResult>(this.parse(event.data, response));
      }
    } catch (error) {
      throw this.signal.aborted ? new InterruptedError() : error instanceof CliError ? error : new StreamInterruptedError(this.where);
    }
    throw new StreamInterruptedError(this.where);
  }

  private get signal(): AbortSignal {
    return this.options.signal;
  }

  private async post<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables, accept: string): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept };
    if (this.options.apiKey) headers['x-api-key'] = this.options.apiKey;
    try {
      return await fetch(this.options.endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: document.toString(), variables }),
        signal: this.signal,
      });
    } catch (error) {
      if (this.signal.aborted) throw new InterruptedError();
      throw new CliError(`Could not reach the extendql server at ${this.where}: ${networkReason(error)}`, { type: 'NetworkError' }, undefined, true);
    }
  }

  private async readJson(response: Response): Promise<ExecutionResultJson> {
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (this.signal.aborted) throw new InterruptedError();
      throw new CliError(`The answer from ${this.where} was cut off: ${networkReason(error)}`, { type: 'NetworkError' }, undefined, true);
    }
    return this.parse(text, response);
  }

  private parse(text: string, response: Response): ExecutionResultJson {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const result = asExecutionResult(json);
    if (!result) {
      const type = response.headers.get('content-type') ?? 'no content type';
      throw new CliError(`${this.where} did not answer like an extendql GraphQL server (HTTP ${response.status}, ${type}); check --server`, {
        type: 'BadResponse',
        httpStatus: response.status,
      });
    }
    return result;
  }

  private dataOf<TResult>(result: ExecutionResultJson): TResult {
    const errors = result.errors ?? [];
    if (errors.some((error) => error.extensions?.code === 'UNAUTHENTICATED')) {
      throw new CliError(
        this.options.apiKey
          ? 'The server rejected the API key (unknown or revoked): check --api-key or EXTENDQL_API_KEY'
          : 'An API key is required: pass --api-key <key> or set EXTENDQL_API_KEY (an operator creates one with `npm run apikey:create -- --name <name>`)',
        { type: 'Unauthenticated' },
      );
    }
    if (errors.length > 0) {
      const messages = errors.map((error) => clean(error.message));
      throw new CliError(`The server refused the request: ${messages.join('; ')}`, {
        type: 'GraphQLError',
        errors: errors.map((error) => ({ message: error.message, code: error.extensions?.code ?? null })),
      });
    }
    if (!isRecord(result.data)) throw new CliError(`${this.where} answered without data`, { type: 'BadResponse' });
    // The trust boundary: the server answered the typed document, so the data has its shape.
    return result.data as TResult;
  }
}
