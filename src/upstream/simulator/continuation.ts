// The simulator's output when it has fetched the source: the source's last frame, continued with
// a slow zoom and pan for the requested duration, captioned with "SIMULATED" and the prompt when
// a font is available, and labelled as simulated in the MP4 metadata. A chained result therefore
// visibly continues its parent. Each request id is encoded once and cached on disk.
//
// ffmpeg runs one at a time (the machine may have two cores and also serves the API), each with
// the timeout of runFfmpeg.

import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SIMULATED_LABEL, findFont, runFfmpeg } from './mp4.ts';

const FPS = 8;
/** Bump when the picture or encoding changes, so stale cached files are not reused. */
const CACHE_VERSION = 1;
/** Widest and tallest aspect ratios kept from the source; beyond, the picture is cropped. */
const MAX_ASPECT = 2.4;

export interface Size {
  width: number;
  height: number;
}

let queue: Promise<unknown> = Promise.resolve();
/** Runs ffmpeg jobs one after another in this process. */
function oneAtATime<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

const even = (n: number): number => Math.max(2, Math.round(n / 2) * 2);

/** The quality's size (16:9) turned to the source's aspect ratio, with the same short side. */
export function continuationSize(base: Size, source?: Size): Size {
  if (!source?.width || !source.height) return base;
  const ratio = Math.min(MAX_ASPECT, Math.max(1 / MAX_ASPECT, source.width / source.height));
  const short = Math.min(base.width, base.height);
  return ratio >= 1 ? { width: even(short * ratio), height: short } : { width: short, height: even(short / ratio) };
}

/**
 * Writes the source's last frame, scaled and cropped to `size`, to `png`. Throws if the source
 * cannot be decoded.
 */
export async function extractLastFrame(source: string, png: string, size: Size): Promise<void> {
  const fit = `scale=${size.width}:${size.height}:force_original_aspect_ratio=increase,crop=${size.width}:${size.height},setsar=1`;
  const args = (seek: string[]) => ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...seek, '-i', source, '-an', '-vf', fit, '-update', '1', '-f', 'image2', png];
  await rm(png, { force: true });
  await oneAtATime(() => runFfmpeg(args(['-sseof', '-1'])));
  if (await nonEmpty(png)) return;
  // Some files cannot be seeked from the end: decode all of it (sources are at most 30 s).
  await oneAtATime(() => runFfmpeg(args([])));
  if (!(await nonEmpty(png))) throw new Error('no frame could be decoded');
}

const nonEmpty = async (file: string) => ((await stat(file).catch(() => undefined))?.size ?? 0) > 0;

/** What drawtext shows: short enough to fit one line at this width. */
function caption(prompt: string, width: number, fontSize: number): string {
  const fits = Math.max(12, Math.floor(width / (fontSize * 0.6)));
  const text = `SIMULATED  ${prompt.replace(/\s+/g, ' ').trim()}`;
  return [...text].length > fits ? `${[...text].slice(0, fits - 1).join('')}…` : text;
}

function continuationArgs(lastFrame: string, size: Size, seconds: number, out: string, font?: string): string[] {
  const frames = Math.round(seconds * FPS);
  const { width, height } = size;
  // Zoom from 1 to 1.12 while panning left to right: gentle, steady motion. Upscaling first
  // keeps zoompan's whole-pixel steps from shaking the picture.
  const filters = [
    `scale=${width * 2}:${height * 2}:flags=bicubic`,
    `zoompan=z='1+0.12*on/${frames}':x='(iw-iw/zoom)*on/${frames}':y='(ih-ih/zoom)/2':d=${frames}:s=${width}x${height}:fps=${FPS}`,
  ];
  if (font) {
    const fontSize = Math.max(10, Math.floor(width / 40));
    filters.push(
      `drawtext=fontfile=${font}:textfile=caption.txt:expansion=none:fontcolor=white:fontsize=${fontSize}` +
        `:box=1:boxcolor=black@0.6:boxborderw=6:x=(w-tw)/2:y=h-th-h/12`,
    );
  }
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-i', lastFrame,
    '-vf', filters.join(','),
    '-frames:v', String(frames),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-r', String(FPS),
    '-movflags', '+faststart',
    '-metadata', `title=${SIMULATED_LABEL}`,
    '-metadata', `comment=${SIMULATED_LABEL}`,
    '-f', 'mp4', out,
  ];
}

/** A font path that can stand in a filter argument without escaping, if there is one. */
function plainFontPath(): string | undefined {
  const font = findFont();
  const full = font && path.join(font.dir, font.file);
  return full && /^[A-Za-z0-9._/-]+$/.test(full) ? full : undefined;
}

export interface ContinuationSpec {
  lastFrame: string;
  size: Size;
  seconds: number;
  prompt: string;
}

/** Encodes the continuation to `out`; without the caption if drawtext fails on this machine. */
export async function encodeContinuation(out: string, spec: ContinuationSpec): Promise<void> {
  const work = `${out}.work`;
  await mkdir(work, { recursive: true });
  try {
    const font = plainFontPath();
    if (font) {
      const fontSize = Math.max(10, Math.floor(spec.size.width / 40));
      await writeFile(path.join(work, 'caption.txt'), caption(spec.prompt, spec.size.width, fontSize));
      try {
        await oneAtATime(() => runFfmpeg(continuationArgs(spec.lastFrame, spec.size, spec.seconds, out, font), work));
        return;
      } catch {
        // No usable font or drawtext here: the metadata label still says "simulated".
      }
    }
    await oneAtATime(() => runFfmpeg(continuationArgs(spec.lastFrame, spec.size, spec.seconds, out), work));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface OutputCache {
  /** The continuation for this request id: encoded at most once, then read from disk. */
  get(requestId: string, spec: ContinuationSpec): Promise<string>;
}

export function createOutputCache(dir: string): OutputCache {
  const root = path.join(path.resolve(dir), 'outputs');
  const inFlight = new Map<string, Promise<string>>();

  async function produce(file: string, spec: ContinuationSpec): Promise<string> {
    if (await nonEmpty(file)) return file;
    await mkdir(root, { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    try {
      await encodeContinuation(tmp, spec);
      await rename(tmp, file); // readers see a whole file or none
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return file;
  }

  return {
    get(requestId, spec) {
      const file = path.join(root, `${requestId}-v${CACHE_VERSION}.mp4`);
      let promise = inFlight.get(file);
      if (!promise) {
        promise = produce(file, spec);
        inFlight.set(file, promise);
        // Once settled, the disk is the cache; a failure lets a later request try again.
        void promise.catch(() => undefined).finally(() => inFlight.delete(file));
      }
      return promise;
    },
  };
}
