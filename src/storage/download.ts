import { createHash, randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getGlobalDispatcher, interceptors, request, type Dispatcher } from 'undici';
import { inspectMp4File, NotMp4Error, type Mp4Info } from './mp4.js';
import type { VideoStorage } from './storage.js';

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

  constructor(
    message: string,
    readonly code: DownloadErrorCode,
    readonly httpStatus?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface DownloadOptions {
  signal?: AbortSignal;
  maxBytes?: number;
  dispatcher?: Dispatcher;
}

const MAX_REDIRECTIONS = 5;
/** Large writes: fewer system calls on the way to disk. */
const WRITE_CHUNK = 1024 * 1024;
/** Flush to disk every so often while the download runs, so the final fsync has little left to do. */
const FLUSH_EVERY = 32 * 1024 * 1024;

/**
 * Streams the MP4 at url into storage under key, hashing and validating it on the way.
 * Failures are DownloadErrors (an abort rethrows the abort error); the temp file is always removed.
 * Does not retry: that is the caller's decision.
 */
export async function downloadVideo(
  url: string,
  storage: VideoStorage,
  key: string,
  options: DownloadOptions = {},
): Promise<DownloadedVideo> {
  const { signal, maxBytes = Infinity } = options;
  const where = redact(url);
  // CDN/presigned output URLs may redirect; plain undici.request does not follow redirects by itself.
  const dispatcher = (options.dispatcher ?? getGlobalDispatcher()).compose(
    interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }),
  );

  const tempPath = join(await storage.tempDir(), `download-${randomUUID()}.part`);
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, { dispatcher, signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new DownloadError(`cannot reach ${where}: ${(err as Error).message}`, 'OUTPUT_UNREACHABLE', undefined, { cause: err });
  }

  const { statusCode, headers, body } = response;
  const contentLength = parseContentLength(headers['content-length']);
  let failure: DownloadError | undefined;
  if (statusCode === 404 || statusCode === 410) {
    failure = new DownloadError(`output not found at ${where}`, 'OUTPUT_NOT_FOUND', statusCode);
  } else if (statusCode < 200 || statusCode > 299) {
    failure = new DownloadError(`unexpected HTTP ${statusCode} from ${where}`, 'OUTPUT_UNREACHABLE', statusCode);
  } else if (contentLength !== undefined && contentLength > maxBytes) {
    failure = new DownloadError(`output is ${contentLength} bytes, limit is ${maxBytes}`, 'OUTPUT_TOO_LARGE', statusCode);
  }
  if (failure) {
    // dump() discards a small body so the connection can be reused, and aborts a large one.
    await body.dump().catch(() => undefined);
    throw failure;
  }

  try {
    const hash = createHash('sha256');
    let byteSize = 0;
    const file = await open(tempPath, 'wx');
    const sink = file.createWriteStream({ highWaterMark: WRITE_CHUNK });
    // Writes and these flushes run on libuv's thread pool, overlapping the network reads.
    let flushedAt = 0;
    let flushing: Promise<void> | undefined;
    const flushInBackground = () => {
      if (flushing || byteSize - flushedAt < FLUSH_EVERY) return;
      flushedAt = byteSize;
      flushing = file
        .datasync()
        .catch(() => undefined) // only an early start of the final fsync; putFile's own sync decides
        .finally(() => (flushing = undefined));
    };
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        byteSize += chunk.length;
        if (byteSize > maxBytes) {
          callback(new DownloadError(`output exceeds ${maxBytes} bytes`, 'OUTPUT_TOO_LARGE', statusCode));
          return;
        }
        hash.update(chunk);
        flushInBackground();
        callback(null, chunk);
      },
      // The file must not close under a flush still running.
      flush(callback) {
        void (flushing ?? Promise.resolve()).then(() => callback());
      },
    });

    let bodyError: unknown;
    body.once('error', (err) => (bodyError ??= err));
    try {
      await pipeline(body, meter, sink, { signal });
    } catch (err) {
      if (err instanceof DownloadError || signal?.aborted) throw err;
      // An error from the response body (socket reset, length mismatch) means the transfer was cut short.
      if (err === bodyError) {
        throw new DownloadError(`download of ${where} was cut short after ${byteSize} bytes: ${(err as Error).message}`, 'OUTPUT_TRUNCATED', statusCode, { cause: err });
      }
      throw err; // local I/O failure: not the origin's fault
    }
    if (contentLength !== undefined && byteSize !== contentLength) {
      throw new DownloadError(`expected ${contentLength} bytes from ${where}, got ${byteSize}`, 'OUTPUT_TRUNCATED', statusCode);
    }

    let info: Mp4Info;
    try {
      info = await inspectMp4File(tempPath);
    } catch (err) {
      if (err instanceof NotMp4Error) {
        throw new DownloadError(`output at ${where} is not a valid MP4: ${err.message}`, 'OUTPUT_NOT_MP4', statusCode, { cause: err });
      }
      throw err;
    }

    await storage.putFile(tempPath, key);
    return { ...info, byteSize, sha256: hash.digest('hex'), contentType: 'video/mp4' };
  } catch (err) {
    await rm(tempPath, { force: true });
    throw err;
  }
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
