import { createHash, type Hash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError, InterruptedError } from './errors.ts';

export interface StoredVideo {
  url: string;
  byteSize: number;
  sha256: string;
}

export interface Downloaded {
  /** Absolute path of the file. */
  path: string;
  bytes: number;
  sha256: string;
  /** Bytes that were already on disk (a cut-short download, or a shorter file at the path) and were not fetched again. */
  resumedFrom: number;
  /** The file already was the video: nothing was fetched. */
  alreadyComplete: boolean;
}

export interface DownloadOptions {
  base: URL;
  signal: AbortSignal;
  /** Replace a different file at `out`. */
  force: boolean;
  onProgress(receivedBytes: number, totalBytes: number): void;
  /** Told when the download goes on from bytes already on disk. */
  onResume?(fromBytes: number): void;
}

/** A download that could be resumed later: its bytes so far are kept in `partial`. */
export class DownloadCutShort extends CliError {
  override name = 'DownloadCutShort';
  readonly partial: string;
  constructor(message: string, details: { type: string; url: string }, partial: string, interrupted: boolean) {
    super(message, { ...details, partial }, interrupted ? new InterruptedError().exitCode : undefined, !interrupted);
    this.partial = partial;
  }
}

const writeError = (path: string, error: unknown) =>
  new CliError(`Cannot write ${path}: ${error instanceof Error ? error.message : String(error)}`, { type: 'OutputError', path });

const fileExists = (path: string, size: number) =>
  new CliError(`${path} exists (${size} bytes) and is not this video; pass --force to replace it`, { type: 'FileExists', path });

/** Where a download of `sha256` to `path` keeps its bytes until they are checked: beside it, hidden, named after the video. */
export const partialPath = (path: string, sha256: string) => join(dirname(path), `.${basename(path)}.${sha256.slice(0, 16)}.part`);

/**
 * Fails before anything is spent when the MP4 could not be saved to `out` later: its directory
 * must exist and be writable, `out` must not be a directory, and an existing file needs `force`.
 */
export async function checkWritable(out: string, force: boolean): Promise<void> {
  const path = resolve(out);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new CliError(`--out ${out} is a directory; give a file name such as ${join(out, 'extended.mp4')}`, { type: 'OutputError', path });
  if (existing && !force) throw new CliError(`${path} exists; pass --force to replace it, or choose another --out`, { type: 'FileExists', path });
  try {
    await access(dirname(path), constants.W_OK);
  } catch (error) {
    throw writeError(path, error);
  }
}

/** The SHA-256 state after the first `bytes` bytes of `path`. */
async function hashOf(path: string, bytes: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (bytes === 0) return hash;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
  return hash;
}

type Plan = { offset: number; fromOut: boolean } | { complete: Downloaded };

/**
 * What is on disk already: `out` may be the video (nothing to do), shorter (perhaps its
 * beginning: resumed, and judged by the checksum of the whole), or another file (kept unless
 * `force`). A partial file of our own for this video is resumed first.
 */
async function plan(path: string, part: string, video: StoredVideo, force: boolean): Promise<Plan> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new CliError(`${path} is a directory; give a file name with --out`, { type: 'OutputError', path });
  if (existing && existing.size === video.byteSize && (await hashOf(path, existing.size)).digest('hex') === video.sha256) {
    return { complete: { path, bytes: existing.size, sha256: video.sha256, resumedFrom: existing.size, alreadyComplete: true } };
  }
  if (existing && !force && existing.size >= video.byteSize) throw fileExists(path, existing.size);
  const partial = await stat(part).catch(() => undefined);
  if (partial && partial.size > 0 && partial.size < video.byteSize) return { offset: partial.size, fromOut: false };
  if (partial) await rm(part, { force: true });
  if (existing && !force && existing.size > 0) {
    // The shorter file stays as it is until the whole video is checked.
    await copyFile(path, part).catch((error: unknown) => {
      throw writeError(path, error);
    });
    return { offset: existing.size, fromOut: true };
  }
  return { offset: 0, fromOut: false };
}

/**
 * The video from `offset` on: a Range request when resuming. A server that ignores the range (200)
 * sends it all, so it starts over; one that cannot satisfy it (416) is asked for it all.
 */
async function fetchFrom(url: URL, offset: number, video: StoredVideo, signal: AbortSignal, failed: (reason: string) => CliError): Promise<{ response: Response; offset: number }> {
  const response = await fetch(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal });
  if (offset > 0 && response.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
    if (range && Number(range[1]) === offset && Number(range[3]) === video.byteSize) return { response, offset };
    await response.body?.cancel().catch(() => undefined);
    throw failed(`the server answered the range ${offset}- with ${response.headers.get('content-range') ?? 'no Content-Range'}`);
  }
  if (offset > 0 && response.status === 416) {
    await response.body?.cancel().catch(() => undefined);
    return fetchFrom(url, 0, video, signal, failed);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(`HTTP ${response.status}`);
  }
  return { response, offset: 0 };
}

/** Appends the body to `part` (or writes it afresh from offset 0), hashing and counting. */
async function receive(response: Response, part: string, offset: number, hash: Hash, onProgress: DownloadOptions['onProgress'], total: number): Promise<number> {
  let received = offset;
  const file = await open(part, offset > 0 ? 'a' : 'w').catch((error: unknown) => {
    throw writeError(part, error);
  });
  try {
    const reader = response.body!.getReader();
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      hash.update(next.value);
      received += next.value.length;
      await file.write(next.value);
      onProgress(received, total);
    }
  } finally {
    await file.close().catch(() => undefined);
  }
  return received;
}

/** The first bytes of an MP4 are its `ftyp` box. */
async function isMp4(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(8), 0, 8, 0);
    return bytesRead === 8 && buffer.subarray(4, 8).toString('latin1') === 'ftyp';
  } finally {
    await file.close();
  }
}

/** A download that failed its checks: its bytes are worthless. */
class Mismatch extends CliError {
  override name = 'Mismatch';
  /** Where the bytes fetched began: 0 for a whole download. */
  readonly resumedFrom: number;
  constructor(message: string, url: string, resumedFrom: number) {
    super(message, { type: 'ChecksumMismatch', url });
    this.resumedFrom = resumedFrom;
  }
}

/** One attempt: fetch what is missing into `part`, then check the whole file. */
async function attempt(url: URL, part: string, offset: number, video: StoredVideo, options: DownloadOptions, failed: (reason: string) => CliError) {
  const fetched = await fetchFrom(url, offset, video, options.signal, failed);
  if (fetched.offset > 0) options.onResume?.(fetched.offset);
  const hash = await hashOf(part, fetched.offset);
  const bytes = await receive(fetched.response, part, fetched.offset, hash, options.onProgress, video.byteSize);
  const where = `${url.origin}${url.pathname}`;
  const mismatch = (reason: string) => new Mismatch(`Downloading ${where} failed: ${reason}`, where, fetched.offset);
  if (bytes !== video.byteSize) throw mismatch(`got ${bytes} bytes, expected ${video.byteSize}`);
  if (!(await isMp4(part))) throw mismatch('the server did not send an MP4 (no ftyp box)');
  const sha256 = hash.digest('hex');
  if (sha256 !== video.sha256) throw mismatch(`its SHA-256 is ${sha256}, expected ${video.sha256}`);
  return { bytes, sha256, resumedFrom: fetched.offset };
}

/**
 * Downloads a stored video to `out` and checks it is the MP4 the API described: an `ftyp` box
 * first, the byte size and the SHA-256. The bytes go to a partial file beside `out`, renamed into
 * place once checked, so `out` never holds half a video. A download cut short keeps its partial
 * file, and the next one resumes it with a Range request. The URL is public: no API key is sent.
 */
export async function downloadVideo(video: StoredVideo, out: string, options: DownloadOptions): Promise<Downloaded> {
  const url = new URL(video.url, options.base);
  const where = `${url.origin}${url.pathname}`;
  const failed = (reason: string) => new CliError(`Downloading ${where} failed: ${reason}`, { type: 'DownloadError', url: where });
  const path = resolve(out);
  const part = partialPath(path, video.sha256);
  const start = await plan(path, part, video, options.force);
  if ('complete' in start) return start.complete;
  let offset = start.offset;
  for (;;) {
    try {
      const done = await attempt(url, part, offset, video, options, failed);
      // A shorter file at `out` is replaced only by the video it is the beginning of.
      if (start.fromOut && (await hashOf(path, start.offset)).digest('hex') !== (await hashOf(part, start.offset)).digest('hex')) {
        throw new Mismatch('', where, start.offset);
      }
      await rename(part, path).catch((error: unknown) => {
        throw writeError(path, error);
      });
      return { path, ...done, alreadyComplete: false };
    } catch (error) {
      if (!(error instanceof Mismatch)) throw await cutShort(error, part, where, options.signal);
      await rm(part, { force: true });
      if (error.resumedFrom === 0) throw error;
      // The shorter file at `out` was not the video's beginning: it is another file.
      if (start.fromOut) throw fileExists(path, start.offset);
      // Bytes of our own from an earlier run were wrong (or the video changed): once more, whole.
      offset = 0;
    }
  }
}

/** A failure on the way: the partial file is kept to resume from when it holds anything. */
async function cutShort(error: unknown, part: string, where: string, signal: AbortSignal): Promise<CliError> {
  const kept = ((await stat(part).catch(() => undefined))?.size ?? 0) > 0;
  if (!kept) await rm(part, { force: true });
  if (signal.aborted) return kept ? new DownloadCutShort('Interrupted', { type: 'Interrupted', url: where }, part, true) : new InterruptedError();
  const known = error instanceof CliError ? error : new CliError(`Downloading ${where} failed: ${reasonOf(error)}`, { type: 'DownloadError', url: where }, undefined, true);
  if (!kept) return known;
  return new DownloadCutShort(known.message, { type: known.details.type, url: where }, part, false);
}

function reasonOf(error: unknown): string {
  if (error instanceof Error && error.cause instanceof Error) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}
