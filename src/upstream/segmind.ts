import { SpanKind } from '@opentelemetry/api';
import { inSpan } from '../telemetry.ts';
import { deadline } from '../net/deadline.ts';
import { loadUndici } from '../net/undici.ts';
import { callForText, TextCallTooLarge, type TextAnswer } from '../net/text-call.ts';
import type { Dispatcher } from 'undici';
import type { SegmindRequest } from '../generations/rules.ts';
import { CircuitBreaker } from './circuit.ts';

export const MODEL = 'pixverse-5-extend';

export type UpstreamErrorCode =
  | 'UPSTREAM_BAD_REQUEST'
  | 'UPSTREAM_UNAUTHORIZED'
  | 'UPSTREAM_FORBIDDEN'
  | 'UPSTREAM_NOT_FOUND'
  | 'UPSTREAM_METHOD_NOT_ALLOWED'
  | 'INSUFFICIENT_CREDITS'
  | 'MODEL_RETIRED'
  | 'UPSTREAM_VALIDATION'
  | 'RATE_LIMITED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_UNREACHABLE'
  | 'UPSTREAM_PROTOCOL'
  | 'UPSTREAM_CIRCUIT_OPEN';

/** The contract's status table: what each status means and whether trying again can help. */
const STATUS_CODES: Record<number, { code: UpstreamErrorCode; retryable: boolean; message: string }> = {
  400: { code: 'UPSTREAM_BAD_REQUEST', retryable: false, message: 'Segmind rejected the request as malformed' },
  401: { code: 'UPSTREAM_UNAUTHORIZED', retryable: false, message: "Segmind rejected this server's API key; an operator must fix SEGMIND_API_KEY" },
  403: { code: 'UPSTREAM_FORBIDDEN', retryable: false, message: "This server's Segmind account lacks permission for the model" },
  404: { code: 'UPSTREAM_NOT_FOUND', retryable: false, message: 'Segmind does not know this model or request (results expire after one hour)' },
  405: { code: 'UPSTREAM_METHOD_NOT_ALLOWED', retryable: false, message: 'Segmind did not allow the HTTP method' },
  406: { code: 'INSUFFICIENT_CREDITS', retryable: false, message: 'Segmind reports insufficient credits' },
  410: { code: 'MODEL_RETIRED', retryable: false, message: 'Segmind has retired the model' },
  422: { code: 'UPSTREAM_VALIDATION', retryable: false, message: 'Segmind rejected the parameters' },
  429: { code: 'RATE_LIMITED', retryable: true, message: 'Segmind rate limit reached' },
  500: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, message: 'Segmind had a server error' },
  502: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, message: 'Segmind answered with a bad gateway' },
  503: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, message: 'Segmind is unavailable' },
  504: { code: 'UPSTREAM_UNAVAILABLE', retryable: true, message: 'Segmind timed out' },
};

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  readonly code: UpstreamErrorCode;
  readonly retryable: boolean;
  readonly options: {
      status?: number;
      /** Segmind's own words, when it gave any. */
      upstreamMessage?: string;
      /** From x-rate-limit-reset-at-utc on a 429. */
      retryAt?: Date;
      /** False when the request may have reached Segmind (a timeout or a reset after sending). */
      certainlyNotReceived?: boolean;
      /** A v2 job that ran and failed (422 with status FAILED), as opposed to a refused request. */
      failedJob?: { error: string; metrics: UpstreamMetrics };
    };
  constructor(
    message: string,
    code: UpstreamErrorCode,
    retryable: boolean,
    options: {
      status?: number;
      /** Segmind's own words, when it gave any. */
      upstreamMessage?: string;
      /** From x-rate-limit-reset-at-utc on a 429. */
      retryAt?: Date;
      /** False when the request may have reached Segmind (a timeout or a reset after sending). */
      certainlyNotReceived?: boolean;
      /** A v2 job that ran and failed (422 with status FAILED), as opposed to a refused request. */
      failedJob?: { error: string; metrics: UpstreamMetrics };
    } = {},
  ) {
    super(options.upstreamMessage ? `${message}: ${options.upstreamMessage}` : message);
    this.code = code;
    this.retryable = retryable;
    this.options = options;
  }
  get status() {
    return this.options.status;
  }
}

export type UpstreamJobStatus = 'QUEUED' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

export interface UpstreamMetrics {
  cost?: number;
  inferenceTime?: number;
  queueTime?: number;
  totalTime?: number;
  remainingCredits?: number;
}

export type UpstreamResult =
  | { status: 'QUEUED' | 'PROCESSING' }
  | { status: 'COMPLETED'; outputUrl: string; metrics: UpstreamMetrics }
  | { status: 'FAILED'; error: string; metrics: UpstreamMetrics };

/** A status answer; a FAILED job that said why (422 on /status) carries its error and metrics. */
export type UpstreamStatus = { status: UpstreamJobStatus } | { status: 'FAILED'; error: string; metrics: UpstreamMetrics };

export interface SegmindClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Budget for one call, connect to last byte. */
  timeoutMs: number;
  /** Consecutive server errors, timeouts or connection failures that open the circuit. */
  circuitThreshold?: number;
  /** How long an open circuit refuses calls before one trial call. */
  circuitCooldownMs?: number;
  /** Told the duration of every call that was made, for metrics. */
  observe?(operation: string, outcome: string, seconds: number): void;
}

/** Segmind's answers are small JSON documents; anything past this is not one. */
const MAX_ANSWER_BYTES = 4 * 2 ** 20;

const JOB_STATUSES = new Set<UpstreamJobStatus>(['QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED']);
const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function parseMetrics(raw: unknown): UpstreamMetrics {
  const m = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  return {
    cost: num(m.cost),
    inferenceTime: num(m.inference_time),
    queueTime: num(m.queue_time),
    totalTime: num(m.total_time),
    remainingCredits: num(m.remaining_credits),
  };
}

/**
 * Segmind's HTTP API. One deliberate undici Agent (its defaults wait 300 s for headers), an
 * overall deadline per call, and no automatic retries: whether to try again is the job's call.
 */
export class SegmindClient {
  private agent: Promise<Dispatcher> | undefined;
  readonly circuit: CircuitBreaker;

  private readonly options: SegmindClientOptions;
  constructor(options: SegmindClientOptions) {
    this.options = options;
    this.circuit = new CircuitBreaker(options.circuitThreshold ?? 5, options.circuitCooldownMs ?? 30_000);
  }

  /** The agent, made on the first call (undici is loaded then). */
  private dispatcher(): Promise<Dispatcher> {
    const { timeoutMs } = this.options;
    this.agent ??= loadUndici().then(
      ({ Agent }) => new Agent({ connectTimeout: Math.min(timeoutMs, 10_000), headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 10_000 }),
    );
    return this.agent;
  }

  /** POST /v2/{model}. Every call is a new billable job upstream. */
  async submit(body: SegmindRequest, signal?: AbortSignal): Promise<{ requestId: string; status: UpstreamJobStatus }> {
    const json = await this.call('POST', `/v2/${MODEL}`, body, signal);
    const requestId = json.request_id;
    if (typeof requestId !== 'string' || requestId === '') {
      throw new UpstreamError('Segmind accepted the job but sent no request_id', 'UPSTREAM_PROTOCOL', false);
    }
    return { requestId, status: JOB_STATUSES.has(json.status as UpstreamJobStatus) ? (json.status as UpstreamJobStatus) : 'QUEUED' };
  }

  /**
   * GET /v2/requests/{id}/status. A failed job answers 422 with `{"status": "FAILED", "error"}`
   * here too: that is the job's answer (with Segmind's text), not a refused request.
   */
  async status(requestId: string, signal?: AbortSignal): Promise<UpstreamStatus> {
    let json: Record<string, unknown>;
    try {
      json = await this.call('GET', `/v2/requests/${encodeURIComponent(requestId)}/status`, undefined, signal);
    } catch (error) {
      if (error instanceof UpstreamError && error.options.failedJob) return { status: 'FAILED', ...error.options.failedJob };
      throw error;
    }
    if (!JOB_STATUSES.has(json.status as UpstreamJobStatus)) {
      throw new UpstreamError(`Segmind sent an unknown status ${JSON.stringify(json.status)}`, 'UPSTREAM_PROTOCOL', true);
    }
    return { status: json.status as UpstreamJobStatus };
  }

  /** GET /v2/requests/{id}: the output URL, or the failure (422 with status FAILED). */
  async result(requestId: string, signal?: AbortSignal): Promise<UpstreamResult> {
    let json: Record<string, unknown>;
    try {
      json = await this.call('GET', `/v2/requests/${encodeURIComponent(requestId)}`, undefined, signal);
    } catch (error) {
      if (error instanceof UpstreamError && error.options.failedJob) {
        return { status: 'FAILED', ...error.options.failedJob };
      }
      throw error;
    }
    const metrics = parseMetrics(json.metrics);
    if (json.status === 'COMPLETED') {
      const output = Array.isArray(json.output) ? json.output[0] : json.output;
      if (typeof output !== 'string' || !/^https?:\/\//.test(output)) {
        throw new UpstreamError('Segmind completed the job without an output URL', 'UPSTREAM_PROTOCOL', false);
      }
      return { status: 'COMPLETED', outputUrl: output, metrics };
    }
    if (json.status === 'FAILED') {
      return { status: 'FAILED', error: typeof json.error === 'string' ? json.error : 'generation failed', metrics };
    }
    if (json.status === 'QUEUED' || json.status === 'PROCESSING') return { status: json.status };
    throw new UpstreamError(`Segmind sent an unknown status ${JSON.stringify(json.status)}`, 'UPSTREAM_PROTOCOL', true);
  }

  /** GET /v1/get-user-credits: the account's balance in USD. */
  async credits(signal?: AbortSignal): Promise<number> {
    const json = await this.call('GET', '/v1/get-user-credits', undefined, signal);
    return (num(json.credits) ?? 0) + (num(json['free-credits']) ?? 0);
  }

  async close(): Promise<void> {
    await (await this.agent)?.close();
  }

  /** One HTTP call, counted by the circuit breaker: server-side trouble opens it, answers close it. */
  private async call(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const retryAt = this.circuit.refuse();
    if (retryAt) {
      throw new UpstreamError('Segmind is failing; calls are paused for a while (circuit open)', 'UPSTREAM_CIRCUIT_OPEN', true, {
        retryAt,
        certainlyNotReceived: true,
      });
    }
    const started = performance.now();
    // Requests ids are not a label: /v2/requests/{id}/status becomes "status".
    const operation = method === 'POST' ? 'submit' : path.endsWith('/status') ? 'status' : path.startsWith('/v2/requests/') ? 'result' : 'credits';
    const observe = (outcome: string) => this.options.observe?.(operation, outcome, (performance.now() - started) / 1000);
    // The span names the operation and the path (request ids are not secret); never the key.
    return inSpan(`segmind ${operation}`, { 'http.request.method': method, 'url.path': path }, async (span) => {
      try {
        const json = await this.send(method, path, body, signal);
        this.circuit.succeeded();
        observe('ok');
        return json;
      } catch (error) {
        const serverSide = error instanceof UpstreamError && ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNREACHABLE'].includes(error.code);
        if (serverSide) this.circuit.failed();
        else this.circuit.succeeded(); // Segmind answered: it is up, whatever it said.
        observe(error instanceof UpstreamError ? error.code : 'error');
        if (error instanceof UpstreamError) span.setAttributes({ 'extendql.error_code': error.code, ...(error.options.status && { 'http.response.status_code': error.options.status }) });
        throw error;
      }
    }, SpanKind.CLIENT);
  }

  private async send(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const dispatcher = await this.dispatcher();
    const limit = deadline(this.options.timeoutMs, signal);
    let answer: TextAnswer;
    try {
      answer = await callForText(dispatcher, new URL(`${this.options.baseUrl}${path}`), {
        method,
        signal: limit.signal,
        maxBytes: MAX_ANSWER_BYTES,
        headers: {
          'x-api-key': this.options.apiKey,
          accept: 'application/json',
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error instanceof TextCallTooLarge) throw new UpstreamError(`Segmind's answer was longer than ${MAX_ANSWER_BYTES} bytes`, 'UPSTREAM_PROTOCOL', true);
      throw this.transportError(error, method);
    } finally {
      limit.clear();
    }
    const json = parseJson(answer.body);
    if (answer.statusCode >= 200 && answer.statusCode < 300) {
      if (!json) throw new UpstreamError('Segmind answered with something other than JSON', 'UPSTREAM_PROTOCOL', true);
      return json;
    }
    throw this.statusError(answer.statusCode, answer.headers, json, answer.body);
  }

  private statusError(status: number, headers: TextAnswer['headers'], json: Record<string, unknown> | null, text: string) {
    const known = STATUS_CODES[status] ?? {
      code: status >= 500 ? ('UPSTREAM_UNAVAILABLE' as const) : ('UPSTREAM_PROTOCOL' as const),
      retryable: status >= 500,
      message: `Segmind answered HTTP ${status}`,
    };
    const upstreamMessage = this.scrub(
      typeof json?.error === 'string' ? json.error : typeof json?.message === 'string' ? json.message : status === 405 ? '' : text.slice(0, 200),
    );
    // Every answer carries the rate-limit window; only a 429 means we must wait for it.
    const resetHeader = status === 429 ? headers['x-rate-limit-reset-at-utc'] : undefined;
    const resetAt = typeof resetHeader === 'string' ? new Date(/^\d+$/.test(resetHeader) ? Number(resetHeader) * 1000 : resetHeader) : undefined;
    return new UpstreamError(known.message, known.code, known.retryable, {
      status,
      upstreamMessage: upstreamMessage || undefined,
      retryAt: resetAt && !Number.isNaN(resetAt.getTime()) ? resetAt : undefined,
      certainlyNotReceived: true,
      ...(status === 422 && json?.status === 'FAILED' && { failedJob: { error: upstreamMessage || 'generation failed', metrics: parseMetrics(json.metrics) } }),
    });
  }

  private transportError(error: unknown, method: string): UpstreamError {
    const err = error as Error & { code?: string };
    // Refused or unresolvable connections never carried the request; anything later may have.
    // undici's errors by their stable codes: a connect timeout never sent the request either.
    const neverSent = err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' || err.code === 'UND_ERR_CONNECT_TIMEOUT';
    const timedOut = err.name === 'TimeoutError' || ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'].includes(err.code ?? '');
    if (err.name === 'AbortError' && !timedOut) {
      return new UpstreamError('The call to Segmind was cancelled', 'UPSTREAM_UNREACHABLE', false, { certainlyNotReceived: method === 'GET' ? true : false });
    }
    return new UpstreamError(
      timedOut ? 'Segmind did not answer in time' : `Segmind could not be reached (${err.code ?? err.name})`,
      timedOut ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE',
      true,
      { certainlyNotReceived: neverSent },
    );
  }

  /** Upstream text never carries our key back out, whatever Segmind puts in it. */
  private scrub(text: string): string {
    return this.options.apiKey ? text.split(this.options.apiKey).join('[redacted]') : text;
  }
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
