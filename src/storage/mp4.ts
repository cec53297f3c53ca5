import { open, type FileHandle } from 'node:fs/promises';
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';
import { readPlainMp4 } from './mp4-moov.ts';

export interface Mp4Info {
  width: number;
  height: number;
  durationSeconds: number;
  /** RFC 6381 codec string of the video track, e.g. `avc1.64001f`. */
  codec: string;
  /** Major brand from `ftyp`, e.g. `isom`. */
  brand: string;
}

export class NotMp4Error extends Error {
  override readonly name = 'NotMp4Error';
}

// Small reads: only box headers and `moov` are ever read; `mdat` is skipped by seeking. The first
// read is small (a short clip's whole `moov` fits in it, and every finished generation is
// inspected); each further one doubles, so a long video's large `moov` still takes few reads.
const FIRST_READ = 16 * 1024;
const MAX_READ = 1024 * 1024;

async function readAt(fh: FileHandle, position: number, length: number): Promise<MP4BoxBuffer> {
  const buf = new MP4BoxBuffer(length);
  const { bytesRead } = await fh.read(new Uint8Array(buf), 0, length, position);
  const out = bytesRead === length ? buf : MP4BoxBuffer.fromArrayBuffer(buf.slice(0, bytesRead), position);
  out.fileStart = position;
  return out;
}

/**
 * Reads an MP4/MOV file's metadata without loading it into memory: the common case (a whole,
 * unfragmented H.264 file) straight from its boxes (./mp4-moov.ts), anything else with mp4box.
 * Throws NotMp4Error for non-MP4 data, files without a video track, and truncated files.
 */
export async function inspectMp4File(path: string, options: { mp4box?: boolean } = {}): Promise<Mp4Info> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const header = Buffer.alloc(8);
    const { bytesRead } = await fh.read(header, 0, Math.min(8, size), 0);
    if (bytesRead < 8 || header.toString('latin1', 4, 8) !== 'ftyp') {
      throw new NotMp4Error('not an MP4 file (first box is not ftyp)');
    }
    // `mp4box: true` skips the direct read (tests hold the two readers to the same answers).
    return (!options.mp4box && (await readPlainMp4(fh, size))) || (await readWithMp4box(fh, size));
  } finally {
    await fh.close();
  }
}

/** The whole parse, by mp4box: any layout and codec it knows, and its own words for what is wrong. */
async function readWithMp4box(fh: FileHandle, size: number): Promise<Mp4Info> {
  const file = createFile();
  let movie: Movie | undefined;
  let parseError: string | undefined;
  file.onReady = (info) => {
    movie = info;
  };
  file.onError = (module, message) => {
    parseError ??= `${module}: ${message}`;
  };

  let position = 0;
  let readSize = FIRST_READ;
  while (!movie && !parseError && position < size) {
    const length = Math.min(readSize, size - position);
    readSize = Math.min(readSize * 2, MAX_READ);
    const chunk = await readAt(fh, position, length);
    let next: number | undefined;
    try {
      next = file.appendBuffer(chunk, position + length >= size);
    } catch (err) {
      throw new NotMp4Error(`invalid MP4 data: ${(err as Error).message}`);
    }
    // Guarantee forward progress whatever the parser asks for.
    position = typeof next === 'number' && next > position ? next : position + length;
  }

  if (parseError) throw new NotMp4Error(`invalid MP4 data: ${parseError}`);
  if (!movie) throw new NotMp4Error('truncated or incomplete MP4 (no complete moov box)');

  const video = movie.videoTracks[0];
  if (!video) throw new NotMp4Error('MP4 has no video track');

  // A complete moov with sample data past EOF means the file was cut short (e.g. a faststart file truncated in mdat).
  for (const track of movie.tracks) {
    for (const sample of file.getTrackSamplesInfo(track.id) ?? []) {
      if (sample.offset + sample.size > size) {
        throw new NotMp4Error('truncated MP4 (sample data extends past end of file)');
      }
    }
  }

  const width = video.video?.width || video.track_width;
  const height = video.video?.height || video.track_height;
  // Fragmented files may leave mvhd.duration at 0; fall back to the fragment duration.
  const fragment = movie.fragment_duration;
  const durationSeconds =
    movie.duration > 0 && movie.timescale > 0
      ? movie.duration / movie.timescale
      : fragment && fragment.den > 0
        ? fragment.num / fragment.den
        : 0;
  return { width, height, durationSeconds, codec: video.codec, brand: movie.brands[0] ?? '' };
}
