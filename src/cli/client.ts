import { CliError, InterruptedError } from './errors.ts';
import { clean } from './format.ts';
import type { TypedDocumentString } from './gql/graphql.ts';
import { readSse } from './sse.ts';
import { multipartBody, type Upload } from './upload.ts';

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

/** What is POSTed: the document's id (a trusted document of the server) or its text. */
type Operation = { documentId: string; variables: unknown } | { query: string; variables: unknown };

/** The document id codegen gave the document (`sha256:<hex>`, see codegen.ts), if any. */
function documentIdOf<TResult, TVariables>(document: Document<TResult, TVariables>): string | undefined {
  const hash: unknown = document.__meta__?.hash;
  return typeof hash === 'string' ? hash : undefined;
}

/**
 * Whether the server refused a document id it does not know but would run the text: extendql
 * says PERSISTED_QUERY_NOT_FOUND (in allowlist mode it says PERSISTED_QUERY_NOT_IN_LIST, and text
 * would be refused too); a GraphQL Yoga server without trusted documents refuses the parameter.
 */
function wantsText(result: ExecutionResultJson, refused: boolean): boolean {
  if (result.data != null) return false;
  return (result.errors ?? []).some(
    (error) => error.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND' || (refused && error.message.startsWith('Unexpected parameter "documentId"')),
  );
}

const isEventStream = (response: Response) => response.headers.get('content-type')?.includes('text/event-stream') === true;

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

  /** Runs a query or mutation (with a file, as a multipart request); GraphQL errors become CliErrors. */
  async request<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables, upload?: Upload): Promise<TResult> {
    const answer = await this.send(document, variables, 'application/graphql-response+json, application/json', upload);
    if (answer instanceof Response) {
      await answer.body?.cancel().catch(() => undefined);
      throw new CliError(`${this.where} answered a request with an event stream`, { type: 'BadResponse' });
    }
    return this.dataOf<TResult>(answer);
  }

  /** Runs a subscription over SSE: each result's data, until the server completes the stream. */
  async *subscribe<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables): AsyncGenerator<TResult, void, undefined> {
    for (;;) {
      const byId = !this.textOnly && documentIdOf(document) !== undefined;
      const answer = await this.send(document, variables, 'text/event-stream');
      if (!(answer instanceof Response) || !answer.body) {
        // Refused before it started (e.g. a bad request): one plain result.
        yield this.dataOf<TResult>(answer instanceof Response ? {} : answer);
        return;
      }
      const results = this.streamed(answer);
      const first = await results.next();
      // A refusal of the id comes as the stream's one event when the client asked for a stream.
      if (byId && !first.done && wantsText(first.value, true)) {
        await results.return();
        this.textOnly = true;
        continue;
      }
      try {
        if (first.done) return;
        yield this.dataOf<TResult>(first.value);
        for await (const result of results) yield this.dataOf<TResult>(result);
        return;
      } finally {
        // Also when the caller stops early: the stream's connection is closed.
        await results.return();
      }
    }
  }

  /** The results of an event stream, until its `complete`; a stream that ends without one was cut. */
  private async *streamed(response: Response): AsyncGenerator<ExecutionResultJson, void, undefined> {
    try {
      for await (const event of readSse(response.body!)) {
        if (event.event === 'complete') return;
        if (event.event === 'next') yield this.parse(event.data, response);
      }
    } catch (error) {
      throw this.signal.aborted ? new InterruptedError() : error instanceof CliError ? error : new StreamInterruptedError(this.where);
    }
    throw new StreamInterruptedError(this.where);
  }

  /** Set once the server has shown it does not know our document ids: the rest goes as text. */
  private textOnly = false;

  /**
   * Sends the operation by its document id; a server that does not know the id but runs text
   * (another version of extendql, or one without trusted documents) gets the text once more.
   * An event stream is returned as it is, anything else read as a GraphQL result.
   */
  private async send<TResult, TVariables>(document: Document<TResult, TVariables>, variables: TVariables, accept: string, upload?: Upload) {
    const documentId = this.textOnly ? undefined : documentIdOf(document);
    if (documentId !== undefined) {
      const response = await this.post({ documentId, variables }, accept, upload);
      if (isEventStream(response)) return response;
      const result = await this.readJson(response);
      if (!wantsText(result, response.status === 400)) return result;
      this.textOnly = true;
    }
    const response = await this.post({ query: document.toString(), variables }, accept, upload);
    return isEventStream(response) ? response : await this.readJson(response);
  }

  private get signal(): AbortSignal {
    return this.options.signal;
  }

  private async post(operation: Operation, accept: string, upload: Upload | undefined): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (this.options.apiKey) headers['x-api-key'] = this.options.apiKey;
    let body: string | ReadableStream<Uint8Array>;
    if (upload) {
      const multipart = multipartBody(operation, upload);
      body = multipart.body;
      headers['content-type'] = multipart.contentType;
      headers['content-length'] = String(multipart.length);
    } else {
      body = JSON.stringify(operation);
      headers['content-type'] = 'application/json';
    }
    try {
      // `duplex` (for a streamed body) is not in this lib's RequestInit yet.
      const init: RequestInit & { duplex: 'half' } = { method: 'POST', headers, body, duplex: 'half', signal: this.signal };
      return await fetch(this.options.endpoint, init);
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
    if (errors.some((error) => error.extensions?.code === 'PERSISTED_QUERY_NOT_IN_LIST')) {
      throw new CliError(
        `${this.where} runs only its trusted documents, and this extendql's operations are not among them: use the extendql command line of the server's version`,
        { type: 'UntrustedDocument' },
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
