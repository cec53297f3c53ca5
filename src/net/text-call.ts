import type { Dispatcher } from 'undici';

export interface TextAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface TextCall {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  /** Ends the call with the signal's reason, whenever it aborts. */
  signal: AbortSignal;
  /** An answer longer than this ends the call with a TextCallTooLarge error. */
  maxBytes: number;
}

/** Like undici's `body.text()`: invalid bytes become U+FFFD and a leading byte order mark is dropped. */
const utf8 = new TextDecoder();

/** An answer body over the caller's limit. */
export class TextCallTooLarge extends Error {
  override name = 'TextCallTooLarge';
}

/**
 * One HTTP call whose answer is read whole as UTF-8 text, on undici's dispatcher API.
 *
 * undici's `request()` is not used here, for memory: its handler keeps an arrow function that
 * closes over the call's controller, and with that V8's young-generation collections kept every
 * finished call (its handler, body stream, headers and buffers) until they were promoted to the old
 * generation, where only a full collection frees them. At one status call per generation per
 * second that was most of what a worker promoted (scenario 4 of `npm run bench`). This handler is
 * a class with the controller in a field and no closures, and its calls die young.
 */
export function callForText(dispatcher: Dispatcher, url: URL, call: TextCall): Promise<TextAnswer> {
  return new Promise<TextAnswer>((resolve, reject) => {
    const handler = new TextHandler(call, resolve, reject);
    if (call.signal.aborted) return handler.fail(call.signal.reason);
    call.signal.addEventListener('abort', handler);
    try {
      dispatcher.dispatch({ origin: url.origin, path: `${url.pathname}${url.search}`, method: call.method, headers: call.headers, body: call.body ?? null }, handler);
    } catch (error) {
      handler.fail(error);
    }
  });
}

/** Collects the answer; also the call's abort listener (`handleEvent`), so no closure is made. */
class TextHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private statusCode = 0;
  private headers: TextAnswer['headers'] = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly call: TextCall;
  private readonly resolve: (answer: TextAnswer) => void;
  private readonly reject: (error: unknown) => void;

  constructor(call: TextCall, resolve: (answer: TextAnswer) => void, reject: (error: unknown) => void) {
    this.call = call;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** The signal aborted: end the call now, whether or not it has started. */
  handleEvent(): void {
    // A signal's reason is an Error (a DOMException) unless someone aborted with something else.
    const reason = this.call.signal.reason as Error;
    this.controller?.abort(reason);
    this.fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A call that was given up while it waited for a connection is not sent.
    if (this.settled) controller.abort(this.call.signal.reason as Error);
    else this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // An informational answer (100 Continue, 103 Early Hints) is followed by the real one.
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.call.maxBytes) {
      const error = new TextCallTooLarge(`the answer is longer than ${this.call.maxBytes} bytes`);
      controller.abort(error);
      this.fail(error);
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    const body = utf8.decode(Buffer.concat(this.chunks, this.size));
    this.finish();
    this.resolve({ statusCode: this.statusCode, headers: this.headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(error);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.finish();
    this.reject(error);
  }

  private finish(): void {
    this.settled = true;
    this.controller = null;
    this.chunks.length = 0;
    this.call.signal.removeEventListener('abort', this);
  }
}
