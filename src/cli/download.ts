import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError, InterruptedError } from './errors.ts';

export interface StoredVideo {
  url: string;
  byteSize: number;
  sha256: string;
}

export interface Downloaded {
  /** Absolute path of the file written. */
  path: string;
  bytes: number;
  sha256: string;
}

const writeError = (path: string, error: unknown) =>
  new CliError(`Cannot write ${path}: ${error instanceof Error ? error.message : String(error)}`, { type: 'OutputError', path });

/**
 * Fails before anything is spent when the MP4 could not be saved to `out` later: its directory
 * must exist and be writable, and `out` must not be a directory.
 */
export async function checkWritable(out: string): Promise<void> {
  const path = resolve(out);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new CliError(`--out ${out} is a directory; give a file name such as ${join(out, 'extended.mp4')}`, { type: 'OutputError', path });
  try {
    await access(dirname(path), constants.W_OK);
  } catch (error) {
    throw writeError(path, error);
  }
}

/**
 * Downloads a stored video to `out` and checks it is the MP4 the API described: an `ftyp` box
 * first, the byte size and the SHA-256. It is written beside `out` and renamed into place, so
 * `out` never holds half a video. The URL is public: the API key is not sent with it.
 */
export async function downloadVideo(
  video: StoredVideo,
  out: string,
  options: { base: URL; signal: AbortSignal; onProgress: (receivedBytes: number, totalBytes: number) => void },
): Promise<Downloaded> {
  const url = new URL(video.url, options.base);
  const where = `${url.origin}${url.pathname}`;
  const failed = (reason: string) => new CliError(`Downloading ${where} failed: ${reason}`, { type: 'DownloadError', url: where });
  const path = resolve(out);
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.part`);

  let response: Response;
  try {
    response = await fetch(url, { signal: options.signal });
  } catch (error) {
    if (options.signal.aborted) throw new InterruptedError();
    throw failed(error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error));
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(`HTTP ${response.status}`);
  }

  const hash = createHash('sha256');
  let received = 0;
  let head = Buffer.alloc(0);
  const file = await open(temp, 'wx').catch((error: unknown) => {
    throw writeError(path, error);
  });
  try {
    try {
      const reader = response.body.getReader();
      for (let next = await reader.read(); !next.done; next = await reader.read()) {
        const chunk = next.value;
        hash.update(chunk);
        received += chunk.length;
        if (head.length < 8) head = Buffer.concat([head, chunk]).subarray(0, 8);
        await file.write(chunk);
        options.onProgress(received, video.byteSize);
      }
    } catch (error) {
      if (options.signal.aborted) throw new InterruptedError();
      throw error instanceof CliError ? error : failed(error instanceof Error ? error.message : String(error));
    }
    await file.close();
    if (head.subarray(4, 8).toString('latin1') !== 'ftyp') throw failed('the server did not send an MP4 (no ftyp box)');
    if (received !== video.byteSize) throw failed(`got ${received} bytes, expected ${video.byteSize}`);
    const sha256 = hash.digest('hex');
    if (sha256 !== video.sha256) throw failed(`its SHA-256 is ${sha256}, expected ${video.sha256}`);
    await rename(temp, path).catch((error: unknown) => {
      throw writeError(path, error);
    });
    return { path, bytes: received, sha256 };
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}
