import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** The response body ended early (a reset connection, fewer bytes than promised): the origin's doing. */
export class BodyCutShort extends Error {
  override name = 'BodyCutShort';
}

/**
 * Body bytes kept while nobody reads them yet (between the headers and `pipeTo`); past this the
 * transfer pauses. Pausing is the exception: undici then hands the rest of that socket read back
 * to the socket, where it may be merged into a copy, and the original read waits for a collection
 * instead of being released once written (see src/storage/file-sink.ts).
 */
const EARLY_BYTES = 1024 * 1024;

/**
 * Opens a GET and resolves once its status and headers are in, with the body kept (up to
 * EARLY_BYTES, then paused) until `pipeTo` or `discard`. Failures before the headers reject it as undici raised them (their codes
 * intact); an abort of `signal` rejects with the signal's reason, at any point.
 *
 * Built on undici's dispatcher API rather than `request()`, like ./text-call.ts and for the same
 * reason: a `request()` response (its handler, body stream and pipeline) outlived V8's young
 * collections and was promoted to the old generation, once per copied video.
 */
export function openResponse(dispatcher: Dispatcher, url: URL, options: { headers: Record<string, string>; signal?: AbortSignal }): Promise<ResponseFeed> {
  return new Promise<ResponseFeed>((resolve, reject) => {
    const feed = new ResponseFeed(options.signal, resolve, reject);
    if (options.signal?.aborted) return feed.handleEvent();
    options.signal?.addEventListener('abort', feed);
    try {
      dispatcher.dispatch({ origin: url.origin, path: `${url.pathname}${url.search}`, method: 'GET', headers: options.headers }, feed);
    } catch (error) {
      feed.onResponseError(null, error as Error);
    }
  });
}

/** One response: the dispatch handler, and the body's way into a Writable. */
export class ResponseFeed implements Dispatcher.DispatchHandler {
  statusCode = 0;
  headers: ResponseHeaders = {};
  private controller: Dispatcher.DispatchController | null = null;
  private opening: { resolve: (feed: ResponseFeed) => void; reject: (error: unknown) => void } | null;
  private readonly signal: AbortSignal | undefined;
  /** Chunks that came after the headers, before `pipeTo`, and their bytes. */
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private ended = false;
  /** The first thing that went wrong: the body's, the sink's or the signal's. */
  private failure: Error | undefined;
  private sink: Writable | null = null;
  private piping: { resolve: () => void; reject: (error: unknown) => void } | null = null;

  constructor(signal: AbortSignal | undefined, resolve: (feed: ResponseFeed) => void, reject: (error: unknown) => void) {
    this.signal = signal;
    this.opening = { resolve, reject };
  }

  /** Writes the body into `sink` with its backpressure, and ends it; settles once the sink has closed. */
  pipeTo(sink: Writable): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.piping = { resolve, reject };
      this.sink = sink;
      sink.on('drain', this.onDrain);
      sink.on('error', this.onSinkError);
      sink.on('close', this.onSinkClose);
      const early = this.early;
      this.early = [];
      let room = true;
      for (const chunk of early) room = sink.write(chunk);
      if (this.failure) sink.destroy(this.failure);
      else if (this.ended) sink.end();
      else if (room) this.controller?.resume();
    });
  }

  /** Not wanted after all (an error status): the connection is dropped rather than read to the end. */
  discard(): void {
    this.early = [];
    this.fail(new Error('response discarded'));
  }

  /** The signal aborted. */
  handleEvent(): void {
    this.fail(this.signal!.reason as Error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Given up while waiting for a connection (or between redirects): nothing more is sent.
    if (this.failure) controller.abort(this.failure);
    else this.controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (statusCode < 200) return; // 100 Continue, 103 Early Hints: the real answer follows
    this.statusCode = statusCode;
    this.headers = headers;
    const opening = this.opening;
    this.opening = null;
    opening?.resolve(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.failure) return;
    if (this.sink) {
      if (!this.sink.write(chunk)) controller.pause();
      return;
    }
    this.early.push(chunk);
    this.earlyBytes += chunk.length;
    if (this.earlyBytes > EARLY_BYTES) controller.pause(); // until pipeTo
  }

  onResponseEnd(): void {
    this.ended = true;
    this.sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    // Before the headers, the error is the call's; after them, the body was cut short.
    this.fail(this.opening ? error : new BodyCutShort(error.message, { cause: error }));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.controller?.abort(error);
    this.controller = null;
    this.signal?.removeEventListener('abort', this);
    const opening = this.opening;
    this.opening = null;
    opening?.reject(error);
    this.sink?.destroy(error);
  }

  private readonly onDrain = (): void => this.controller?.resume();

  private readonly onSinkError = (error: Error): void => this.fail(error);

  private readonly onSinkClose = (): void => {
    this.signal?.removeEventListener('abort', this);
    const piping = this.piping;
    this.piping = null;
    if (!piping) return;
    if (this.failure) piping.reject(this.failure);
    else if (this.sink?.writableFinished) piping.resolve();
    else piping.reject(new Error('the file closed before the download ended'));
  };
}
