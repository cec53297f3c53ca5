// GET/HEAD /samples/beach.mp4: a small synthetic clip (a beach at sunset with rolling waves) that
// the README's and GraphiQL's examples extend, so they work offline with a real fetch. It is made
// once with the bundled ffmpeg and cached under DATA_DIR/samples.

import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../logger.ts';
import { runFfmpeg } from '../upstream/simulator/mp4.ts';
import { parseRange } from './videos.ts';

export const SAMPLE_PATH = '/samples/beach.mp4';
const WIDTH = 640;
const HEIGHT = 360;
const SECONDS = 4;
const FPS = 10;

/** Per-pixel colour of the scene: sky with a sun, sea with moving swell, a wavy shoreline, sand. */
function beachExpressions(): { r: string; g: string; b: string } {
  const horizon = '0.42*H';
  const sun = `lt(hypot(X-0.72*W,Y-0.26*H),0.06*W)`;
  const sea = `lt(Y,0.7*H+6*sin(X/37+T*2.2))`;
  const swell = `lt(mod(Y+T*8+X/40,9),1.2)`;
  const sky = (top: number, bottom: number) => `${top}+${bottom - top}*Y/(${horizon})`;
  const pick = (sunColour: number, skyColour: string, seaColour: string, sand: number) =>
    `if(${sun},${sunColour},if(lt(Y,${horizon}),${skyColour},if(${sea},${seaColour},${sand})))`;
  return {
    r: pick(255, sky(245, 250), `20+30*${swell}`, 226),
    g: pick(215, sky(140, 200), `95+40*(Y-${horizon})/(0.3*H)+70*${swell}`, 200),
    b: pick(120, sky(200, 120), `150+60*${swell}`, 150),
  };
}

async function generateSample(file: string): Promise<void> {
  const { r, g, b } = beachExpressions();
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    await runFfmpeg([
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
      '-f', 'lavfi', '-i', `color=c=black:s=${WIDTH}x${HEIGHT}:r=${FPS}:d=${SECONDS}`,
      '-vf', `format=rgb24,geq=r='${r}':g='${g}':b='${b}',format=yuv420p`,
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '26',
      '-movflags', '+faststart',
      '-metadata', 'title=extendql sample clip (synthetic)',
      '-f', 'mp4', tmp,
    ]);
    await rename(tmp, file); // a whole file or none
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export interface SampleHandler {
  /** Makes the clip now (if not cached) rather than on its first request. */
  prepare(): Promise<void>;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createSampleHandler(dataDir: string, options: { prepareNow?: boolean; logger?: Logger } = {}): SampleHandler {
  const file = path.join(path.resolve(dataDir), 'samples', 'beach.mp4');
  let ready: Promise<void> | undefined;
  const prepare = () => {
    ready ??= stat(file).then(
      (found) => (found.size > 0 ? undefined : generateSample(file)),
      () => generateSample(file),
    );
    ready.catch(() => (ready = undefined)); // try again on the next request
    return ready;
  };

  if (options.prepareNow) prepare().catch((error: Error) => options.logger?.warn({ err: error.message }, 'the sample clip could not be made'));

  return {
    prepare,
    async handle(req, res) {
      try {
        const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
        if (pathname !== SAMPLE_PATH) return send(res, 404, { 'Content-Type': 'text/plain' }, 'not found');
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { Allow: 'GET, HEAD' }, 'method not allowed');
        await prepare();
        await serveFile(req, res, file);
      } catch {
        if (!res.headersSent) send(res, 500, { 'Content-Type': 'text/plain' }, 'the sample clip could not be made');
        else res.destroy();
      }
    },
  };
}

function send(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, text: string): void {
  res.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' }).end(text);
}

async function serveFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const { size, mtimeMs } = await stat(file);
  const headers: OutgoingHttpHeaders = {
    'Accept-Ranges': 'bytes',
    ETag: `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`,
    'Cache-Control': 'public, max-age=3600',
    'Content-Type': 'video/mp4',
    'X-Content-Type-Options': 'nosniff',
  };
  const range = req.method === 'GET' && req.headers.range !== undefined ? parseRange(req.headers.range, size) : undefined;
  if (range === 'unsatisfiable') return send(res, 416, { 'Content-Range': `bytes */${size}` }, 'range not satisfiable');
  headers['Content-Length'] = range ? range.end - range.start + 1 : size;
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') return void res.end();
  await pipeline(createReadStream(file, range), res).catch(() => undefined); // the client may leave early
}
