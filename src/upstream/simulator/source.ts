// What Segmind (PixVerse) does with `video_url` before it generates anything: fetch it and take
// only MP4/MOV files within 50 MB, 30 s and 1920 px. Failures read like Segmind's own messages.

import { createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';

export const SOURCE_LIMITS = { bytes: 50 * 1024 * 1024, seconds: 30, pixels: 1920 };
const FETCH_TIMEOUT_MS = 30_000;
const NOT_A_VIDEO = 'video_url is not a supported video: expected an MP4 or MOV file';

export type SourceCheck = { ok: true; width: number; height: number; seconds: number } | { ok: false; error: string };

class SourceRejected extends Error {}

/** A byte counter that stops the download past the size limit. */
function limitBytes(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > max) callback(new SourceRejected(`video_url is too large: more than ${max / 1024 / 1024} MB`));
      else callback(null, chunk);
    },
  });
}

/** Width, height and duration from the file's `moov`, or undefined if mp4box cannot read it. */
function readMovie(bytes: Buffer): Movie | undefined {
  const file = createFile();
  let movie: Movie | undefined;
  file.onReady = (info) => {
    movie = info;
  };
  file.onError = () => undefined;
  try {
    const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(copy, 0));
    file.flush();
  } catch {
    return undefined;
  }
  return movie;
}

/** Judges the downloaded file by its header and its `moov`. */
export function judgeSource(bytes: Buffer): SourceCheck {
  if (bytes.subarray(4, 8).toString('latin1') !== 'ftyp') return { ok: false, error: NOT_A_VIDEO };
  const movie = readMovie(bytes);
  const track = movie?.videoTracks[0];
  if (!movie || !track) return { ok: false, error: `${NOT_A_VIDEO} with a readable video track` };
  const seconds = movie.timescale ? movie.duration / movie.timescale : 0;
  const { width, height } = track.video ?? { width: track.track_width, height: track.track_height };
  if (seconds > SOURCE_LIMITS.seconds) {
    return { ok: false, error: `video_url is too long: ${seconds.toFixed(1)} s (at most ${SOURCE_LIMITS.seconds} s)` };
  }
  if (Math.max(width, height) > SOURCE_LIMITS.pixels) {
    return { ok: false, error: `video_url is too large: ${width}x${height} (at most ${SOURCE_LIMITS.pixels} px)` };
  }
  if (!width || !height) return { ok: false, error: `${NOT_A_VIDEO} with a readable video track` };
  return { ok: true, width, height, seconds };
}

/**
 * GETs `url` into `file` (within the size limit) and judges it. The file is left for the caller
 * when the check passes, and removed otherwise. `signal` aborts the fetch (the simulator closing):
 * then this throws, since nothing can be said about the source.
 */
export async function fetchSource(url: string, file: string, signal: AbortSignal): Promise<SourceCheck> {
  let check: SourceCheck;
  try {
    check = await download(url, file, AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]));
  } catch (err) {
    if (signal.aborted) {
      await rm(file, { force: true });
      throw err;
    }
    const reason = err instanceof SourceRejected ? err.message : `Failed to fetch video_url: ${err instanceof Error ? err.message : String(err)}`;
    check = { ok: false, error: reason };
  }
  if (!check.ok) await rm(file, { force: true });
  return check;
}

async function download(url: string, file: string, signal: AbortSignal): Promise<SourceCheck> {
  const res = await fetch(url, { signal, redirect: 'follow' });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    return { ok: false, error: `Failed to fetch video_url: HTTP ${res.status}` };
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > SOURCE_LIMITS.bytes) {
    await res.body.cancel().catch(() => undefined);
    throw new SourceRejected(`video_url is too large: ${(declared / 1024 / 1024).toFixed(1)} MB (at most ${SOURCE_LIMITS.bytes / 1024 / 1024} MB)`);
  }
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  await pipeline(body, limitBytes(SOURCE_LIMITS.bytes), createWriteStream(file), { signal });
  return judgeSource(await readFile(file));
}
