import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { BodyCutShort, openResponse, type ResponseFeed } from '../net/response-feed.ts';
import { loadUndici } from '../net/undici.ts';
import { FileSink, type ChunkRelease } from './file-sink.ts';
import { inspectMp4File, NotMp4Error, type Mp4Info } from './mp4.ts';
import { asStorageError, type VideoStorage } from './storage.ts';

export interface DownloadedVideo extends Mp4Info {
  byteSize: number;
  /** Lowercase hex SHA-256 of the stored bytes. */
  sha256: string;
  contentType: 'video/mp4';
}

export type DownloadErrorCode =
  | 'OUTPUT_NOT_FOUND'
  | 'OUTPUT_UNREACHABLE'
  | 'OUTPUT_TRUNCATED'
  | 'OUTPUT_NOT_MP4'
  | 'OUTPUT_TOO_LARGE';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';

  readonly code: DownloadErrorCode;
  readonly httpStatus?: number;
  constructor(
    message: string,
    code: DownloadErrorCode,
    httpStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

export interface DownloadOptions {
  signal?: AbortSignal;
  maxBytes?: number;
  dispatcher?: Dispatcher;
  /**
   * A stable name for this download's temporary files (e.g. the planned video id). With one, a
   * download cut short is kept and resumed with a Range request next time, and a finished one
   * that storage could not take is kept and only stored again. Without one, nothing is kept.
   */
  tempName?: string;
}

const MAX_REDIRECTIONS = 5;
/** Chunks gathered while a write runs go down together: fewer system calls on the way to disk. */
const WRITE_CHUNK = 1024 * 1024;
/** Flush to disk every so often while the download runs, so the final fsync has little left to do. */
const FLUSH_EVERY = 32 * 1024 * 1024;

/**
 * Streams the MP4 at url into storage under key, hashing and validating it on the way.
 * Failures are DownloadErrors, or StorageErrors when the local disk or the storage fails (an
 * abort rethrows the abort error). Does not retry: that is the caller's decision.
 */
export async function downloadVideo(url: string, storage: VideoStorage, key: string, options: DownloadOptions = {}): Promise<DownloadedVideo> {
  const dir = await storage.tempDir();
  const keep = options.tempName !== undefined;
  const name = options.tempName ?? `download-${randomUUID()}`;
  const part = join(dir, `${name}.part`);
  // A finished, checked download that storage did not take last time: only the put is left.
  const complete = join(dir, `${name}.complete`);
  try {
    let sha256: string;
    if (keep && (await sizeOf(complete)) !== null) {
      const hash = createHash('sha256');
      await feedFile(complete, hash);
      sha256 = hash.digest('hex');
    } else {
      sha256 = await fetchToFile(url, part, options);
      await rename(part, complete).catch((err: unknown) => Promise.reject(asStorageError(err)));
    }
    const info = await inspect(complete, redact(url));
    const byteSize = (await stat(complete)).size;
    await storage.putFile(complete, key);
    return { ...info, byteSize, sha256, contentType: 'video/mp4' };
  } catch (err) {
    // A cut-short or unstorable download is worth keeping for the next try; bad bytes are not.
    const bad = err instanceof DownloadError && (err.code === 'OUTPUT_NOT_MP4' || err.code === 'OUTPUT_TOO_LARGE');
    if (!keep || bad || options.signal?.aborted) await Promise.all([rm(part, { force: true }), rm(complete, { force: true })]);
    throw err;
  }
}

/** Removes what a download under `tempName` kept for its next try (once there will be none). */
export async function discardKeptDownload(storage: VideoStorage, tempName: string): Promise<void> {
  const dir = await storage.tempDir();
  await Promise.all([rm(join(dir, `${tempName}.part`), { force: true }), rm(join(dir, `${tempName}.complete`), { force: true })]);
}

async function inspect(path: string, where: string): Promise<Mp4Info> {
  try {
    return await inspectMp4File(path);
  } catch (err) {
    if (err instanceof NotMp4Error) throw new DownloadError(`output at ${where} is not a valid MP4: ${err.message}`, 'OUTPUT_NOT_MP4', undefined, { cause: err });
    throw asStorageError(err);
  }
}

interface Origin {
  feed: ResponseFeed;
  /** Which written chunks FileSink may release: it depends on the connection (see outputDispatcher). */
  release: ChunkRelease;
  /** Where the body starts in the file: the bytes already there, or 0 for a whole new copy. */
  offset: number;
  /** The whole file's length, when the origin said. */
  total: number | undefined;
}

/** Each dispatcher with redirects followed, made once. */
const following = new WeakMap<Dispatcher, Dispatcher>();
/**
 * Outputs are fetched over HTTP/1.1, one response per connection at a time, unless the caller
 * brings a dispatcher: then a socket read holds one response's bytes, in order, and FileSink may
 * release each read as soon as its last piece is on disk ('read-ends'). Over HTTP/2 one read
 * interleaves several responses, and only whole reads may be released.
 */
let ownAgent: Dispatcher | undefined;

/**
 * The dispatcher for an output, and what FileSink may release. `http2` is for an origin that
 * refused HTTP/1.1: undici's global dispatcher then speaks HTTP/2 with it.
 */
async function outputDispatcher(given: Dispatcher | undefined, http2: boolean): Promise<{ dispatcher: Dispatcher; release: ChunkRelease }> {
  const { Agent, getGlobalDispatcher, interceptors } = await loadUndici();
  ownAgent ??= new Agent({ allowH2: false, pipelining: 1 });
  const base = given ?? (http2 ? getGlobalDispatcher() : ownAgent);
  let composed = following.get(base);
  if (!composed) {
    // CDN/presigned output URLs may redirect; undici's dispatchers do not follow redirects by themselves.
    composed = base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
    following.set(base, composed);
  }
  return { dispatcher: composed, release: base === ownAgent ? 'read-ends' : 'whole' };
}

/** An origin that speaks only HTTP/2 ends an HTTP/1.1-only TLS handshake with this alert (ALPN). */
function refusesHttp1(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' || /no application protocol/i.test(String(message));
}

/**
 * Asks for the file, or for the rest of it when `have` bytes are already on disk. An origin that
 * ignores the Range (200) or answers a range we did not ask for gets the whole file again.
 */
async function requestOutput(url: string, have: number, options: DownloadOptions, http2 = false): Promise<Origin> {
  const { signal, maxBytes = Infinity } = options;
  const where = redact(url);
  const { dispatcher, release } = await outputDispatcher(options.dispatcher, http2);
  let feed: ResponseFeed;
  try {
    feed = await openResponse(dispatcher, new URL(url), { signal, headers: have > 0 ? { range: `bytes=${have}-` } : {} });
  } catch (err) {
    if (signal?.aborted) throw err;
    if (!options.dispatcher && !http2 && refusesHttp1(err)) return requestOutput(url, have, options, true);
    throw new DownloadError(`cannot reach ${where}: ${(err as Error).message}`, 'OUTPUT_UNREACHABLE', undefined, { cause: err });
  }
  const { statusCode, headers } = feed;
  const range = statusCode === 206 ? /^bytes (\d+)-\d+\/(\d+)$/.exec(String(headers['content-range'] ?? '')) : null;
  const offset = range ? Number(range[1]) : 0;
  const total = range ? Number(range[2]) : parseContentLength(headers['content-length']);
  let failure: DownloadError | undefined;
  if (statusCode === 404 || statusCode === 410) {
    failure = new DownloadError(`output not found at ${where}`, 'OUTPUT_NOT_FOUND', statusCode);
  } else if (statusCode === 416 || (statusCode === 206 && offset !== have)) {
    failure = new DownloadError(`${where} did not resume at byte ${have}`, 'OUTPUT_TRUNCATED', statusCode);
  } else if (statusCode < 200 || statusCode > 299) {
    failure = new DownloadError(`unexpected HTTP ${statusCode} from ${where}`, 'OUTPUT_UNREACHABLE', statusCode);
  } else if (total !== undefined && total > maxBytes) {
    failure = new DownloadError(`output is ${total} bytes, limit is ${maxBytes}`, 'OUTPUT_TOO_LARGE', statusCode);
  }
  if (failure) {
    feed.discard();
    if (failure.code === 'OUTPUT_TRUNCATED' && have > 0) return requestOutput(url, 0, options, http2); // start over, without a Range
    throw failure;
  }
  return { feed, release, offset, total };
}

/** Downloads url into `part` (resuming what is there), and returns the SHA-256 of the whole file. */
async function fetchToFile(url: string, part: string, options: DownloadOptions): Promise<string> {
  const { signal, maxBytes = Infinity } = options;
  const where = redact(url);
  // The body is kept (up to 1 MiB, then paused) until the file is open.
  const { feed, release, offset, total } = await requestOutput(url, (await sizeOf(part)) ?? 0, options);
  const { statusCode } = feed;
  const hash = createHash('sha256');
  let byteSize = offset;
  let file: FileHandle;
  try {
    if (offset > 0) await feedFile(part, hash, offset);
    file = await open(part, offset > 0 ? 'r+' : 'w');
  } catch (err) {
    feed.discard();
    throw asStorageError(err);
  }
  const sink = new FileSink(file, {
    start: offset,
    highWaterMark: WRITE_CHUNK,
    flushEvery: FLUSH_EVERY,
    release,
    inspect(chunk) {
      byteSize += chunk.length;
      if (byteSize > maxBytes) return new DownloadError(`output exceeds ${maxBytes} bytes`, 'OUTPUT_TOO_LARGE', statusCode);
      hash.update(chunk);
      return undefined;
    },
  });
  try {
    await feed.pipeTo(sink);
    await file.close();
  } catch (err) {
    // A close waits for a write still under way; the first error is the one that tells.
    await file.close().catch(() => undefined);
    if (err instanceof DownloadError || signal?.aborted) throw err;
    // The transfer was cut short (a reset connection, fewer bytes than promised): the origin's doing.
    if (err instanceof BodyCutShort) {
      throw new DownloadError(`download of ${where} was cut short after ${byteSize} bytes: ${err.message}`, 'OUTPUT_TRUNCATED', statusCode, { cause: err.cause });
    }
    // Otherwise the disk or the storage failed, or something else local: not the origin's fault.
    throw asStorageError(err);
  }
  if (total !== undefined && byteSize !== total) {
    throw new DownloadError(`expected ${total} bytes from ${where}, got ${byteSize}`, 'OUTPUT_TRUNCATED', statusCode);
  }
  return hash.digest('hex');
}

/** Feeds the file's first `length` bytes (all of them by default) into hash. */
async function feedFile(path: string, hash: Hash, length?: number): Promise<void> {
  const stream = createReadStream(path, length === undefined ? {} : { end: length - 1 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}

async function sizeOf(path: string): Promise<number | null> {
  return stat(path).then(
    (s) => s.size,
    () => null,
  );
}

/** Output URLs are often presigned: keep credentials in the query string out of error messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '<invalid url>';
  }
}

function parseContentLength(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
