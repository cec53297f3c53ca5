import type { FileHandle } from 'node:fs/promises';
import type { Mp4Info } from './mp4.ts';

/**
 * The common case of the MP4 check, read directly from the boxes: a whole, unfragmented file
 * with one H.264 video track (`avc1`/`avc3`) and perhaps AAC sound, the kind Segmind returns. It reads the top-level box
 * headers and `moov` (never `mdat`), and walks the sample tables with integer arithmetic, where
 * mp4box builds an object per sample; a finished generation's check allocates a few kB instead of
 * about 100 kB. Anything else (fragments, other codecs, compact sample sizes, a box that does not
 * add up, a file cut short) answers null, and mp4box decides, with its own errors.
 */

/** A moov larger than this is left to mp4box (which reads it in pieces). */
const MAX_MOOV_BYTES = 16 * 1024 * 1024;
/** A file of more top-level boxes than this is left to mp4box (each box here is one read). */
const MAX_TOP_LEVEL_BOXES = 64;

interface Box {
  type: string;
  /** Where the payload starts (after the header). */
  start: number;
  /** Where the box ends. */
  end: number;
}

/** The boxes inside buf[from, to), or null when one does not fit. */
function children(buf: Buffer, from: number, to: number): Box[] | null {
  const boxes: Box[] = [];
  for (let at = from; at < to; ) {
    if (to - at < 8) return null;
    let size = buf.readUInt32BE(at);
    let header = 8;
    if (size === 1) {
      if (to - at < 16) return null;
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = to - at;
    }
    if (size < header || at + size > to) return null;
    boxes.push({ type: buf.toString('latin1', at + 4, at + 8), start: at + header, end: at + size });
    at += size;
  }
  return boxes;
}

/** The one child of `type`, or undefined; null when the children do not parse. */
function child(buf: Buffer, parent: Box, type: string): Box | undefined | null {
  const boxes = children(buf, parent.start, parent.end);
  return boxes && boxes.find((box) => box.type === type);
}

/** Follows a path of single children (`mdia/minf/stbl`); null when any step is missing. */
function path(buf: Buffer, from: Box, types: string[]): Box | null {
  let box: Box | null | undefined = from;
  for (const type of types) {
    box = child(buf, box, type);
    if (!box) return null;
  }
  return box;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** Duration in seconds from mvhd (version 0 or 1). */
function movieDuration(buf: Buffer, mvhd: Box): number | null {
  const v1 = buf[mvhd.start] === 1;
  const need = v1 ? 32 : 20;
  if (mvhd.end - mvhd.start < need) return null;
  const timescale = buf.readUInt32BE(mvhd.start + (v1 ? 20 : 12));
  const duration = v1 ? Number(buf.readBigUInt64BE(mvhd.start + 24)) : buf.readUInt32BE(mvhd.start + 16);
  return duration > 0 && timescale > 0 ? duration / timescale : 0;
}

/** tkhd's width and height (16.16 fixed point). */
function trackSize(buf: Buffer, tkhd: Box): { width: number; height: number } | null {
  const v1 = buf[tkhd.start] === 1;
  const at = tkhd.start + (v1 ? 88 : 76);
  if (at + 8 > tkhd.end) return null;
  return { width: buf.readUInt32BE(at) / 65536, height: buf.readUInt32BE(at + 4) / 65536 };
}

interface VideoEntry {
  codec: string;
  width: number;
  height: number;
}

/** The type of the first sample entry (`avc1`, `mp4a`...), or undefined. */
function firstEntryType(buf: Buffer, stsd: Box): string | undefined {
  if (stsd.end - stsd.start < 8 || buf.readUInt32BE(stsd.start + 4) < 1) return undefined;
  return children(buf, stsd.start + 8, stsd.end)?.[0]?.type;
}

/** The first sample entry, when it is H.264 with its avcC: codec string and coded size. */
function avcEntry(buf: Buffer, stsd: Box): VideoEntry | null {
  if (stsd.end - stsd.start < 8 || buf.readUInt32BE(stsd.start + 4) < 1) return null;
  const entries = children(buf, stsd.start + 8, stsd.end);
  const entry = entries?.[0];
  if (!entry || (entry.type !== 'avc1' && entry.type !== 'avc3')) return null;
  // VisualSampleEntry: 78 bytes of fields before its own boxes; width and height at 24 and 26.
  if (entry.end - entry.start < 78) return null;
  const avcC = children(buf, entry.start + 78, entry.end)?.find((box) => box.type === 'avcC');
  if (!avcC || avcC.end - avcC.start < 4) return null;
  const [profile, compatibility, level] = [buf[avcC.start + 1]!, buf[avcC.start + 2]!, buf[avcC.start + 3]!];
  return {
    codec: `${entry.type}.${hex2(profile)}${hex2(compatibility)}${hex2(level)}`,
    width: buf.readUInt16BE(entry.start + 24),
    height: buf.readUInt16BE(entry.start + 26),
  };
}

/**
 * Where the track's sample data ends (the largest offset + size over its samples), from stsz,
 * stsc and stco/co64 without listing the samples; null when the tables do not add up.
 */
function sampleDataEnd(buf: Buffer, stbl: Box): number | null {
  const boxes = children(buf, stbl.start, stbl.end);
  const stsz = boxes?.find((box) => box.type === 'stsz');
  const stsc = boxes?.find((box) => box.type === 'stsc');
  const co = boxes?.find((box) => box.type === 'stco' || box.type === 'co64');
  if (!stsz || !stsc || !co) return null;
  if (stsz.end - stsz.start < 12 || stsc.end - stsc.start < 8 || co.end - co.start < 8) return null;
  const uniform = buf.readUInt32BE(stsz.start + 4);
  const samples = buf.readUInt32BE(stsz.start + 8);
  if (uniform === 0 && stsz.start + 12 + 4 * samples > stsz.end) return null;
  const runs = buf.readUInt32BE(stsc.start + 4);
  if (stsc.start + 8 + 12 * runs > stsc.end) return null;
  const wide = co.type === 'co64';
  const chunks = buf.readUInt32BE(co.start + 4);
  if (co.start + 8 + (wide ? 8 : 4) * chunks > co.end) return null;
  let sample = 0;
  let end = 0;
  for (let run = 0; run < runs && sample < samples; run++) {
    const first = buf.readUInt32BE(stsc.start + 8 + 12 * run);
    const perChunk = buf.readUInt32BE(stsc.start + 12 + 12 * run);
    const last = run + 1 < runs ? buf.readUInt32BE(stsc.start + 8 + 12 * (run + 1)) - 1 : chunks;
    // Runs start at chunk 1 and move forward: each chunk is visited once (a table that goes back
    // would make the walk quadratic).
    if ((run === 0 && first !== 1) || first < 1 || last < first || last > chunks) return null;
    for (let chunk = first; chunk <= last && sample < samples; chunk++) {
      let offset = wide ? Number(buf.readBigUInt64BE(co.start + 8 + 8 * (chunk - 1))) : buf.readUInt32BE(co.start + 8 + 4 * (chunk - 1));
      if (uniform > 0) {
        // One multiplication: a hostile file may claim billions of samples of one size.
        const count = Math.min(perChunk, samples - sample);
        offset += count * uniform;
        sample += count;
      } else {
        // Bounded by the size table, which is inside moov.
        for (let k = 0; k < perChunk && sample < samples; k++, sample++) offset += buf.readUInt32BE(stsz.start + 12 + 4 * sample);
      }
      end = Math.max(end, offset);
    }
  }
  return sample === samples ? end : null;
}

/** Reads the top-level boxes: the major brand and the moov bytes, or null if anything is unusual. */
async function topLevel(fh: FileHandle, size: number): Promise<{ brand: string; moov: Buffer } | null> {
  const header = Buffer.alloc(16);
  let brand: string | undefined;
  let moov: Buffer | undefined;
  for (let at = 0, count = 0; at < size; count++) {
    if (count === MAX_TOP_LEVEL_BOXES) return null;
    const { bytesRead } = await fh.read(header, 0, Math.min(16, size - at), at);
    if (bytesRead < 8) return null;
    const type = header.toString('latin1', 4, 8);
    let boxSize = header.readUInt32BE(0);
    let length = 8;
    if (boxSize === 1) {
      if (bytesRead < 16) return null;
      boxSize = Number(header.readBigUInt64BE(8));
      length = 16;
    } else if (boxSize === 0) {
      boxSize = size - at;
    }
    if (boxSize < length || at + boxSize > size) return null;
    // Fragments, a second moov, or a moov "to the end of the file" (size 0): mp4box's to judge.
    if (type === 'moof' || (type === 'moov' && (moov || header.readUInt32BE(0) === 0))) return null;
    if (type === 'ftyp' && at === 0 && boxSize >= length + 4) brand = header.toString('latin1', length, length + 4);
    if (type === 'moov') {
      if (boxSize > MAX_MOOV_BYTES) return null;
      moov = Buffer.alloc(boxSize);
      if ((await fh.read(moov, 0, boxSize, at)).bytesRead !== boxSize) return null;
    }
    at += boxSize;
  }
  return brand !== undefined && moov ? { brand, moov } : null;
}

/** The file's Mp4Info when it is the common case (see above), else null. */
export async function readPlainMp4(fh: FileHandle, size: number): Promise<Mp4Info | null> {
  const top = await topLevel(fh, size);
  if (!top) return null;
  const { moov } = top;
  const boxes = children(moov, 8, moov.length);
  if (!boxes || boxes.some((box) => box.type === 'mvex')) return null;
  const mvhd = boxes.find((box) => box.type === 'mvhd');
  const durationSeconds = mvhd ? movieDuration(moov, mvhd) : null;
  if (durationSeconds === null) return null;
  let video: (VideoEntry & { trackWidth: number; trackHeight: number }) | undefined;
  for (const trak of boxes.filter((box) => box.type === 'trak')) {
    const stbl = path(moov, trak, ['mdia', 'minf', 'stbl']);
    const hdlr = path(moov, trak, ['mdia', 'hdlr']);
    const tkhd = child(moov, trak, 'tkhd');
    if (!stbl || !hdlr || !tkhd || !path(moov, trak, ['mdia', 'mdhd']) || hdlr.end - hdlr.start < 12) return null;
    const stsd = child(moov, stbl, 'stsd');
    if (!stsd || !child(moov, stbl, 'stts')) return null;
    // Sample data past the end of the file: cut short. mp4box says so in its words.
    const end = sampleDataEnd(moov, stbl);
    if (end === null || end > size) return null;
    // One H.264 video track and AAC sound tracks; any other mix is mp4box's to read.
    const handler = moov.toString('latin1', hdlr.start + 8, hdlr.start + 12);
    if (handler === 'soun' && firstEntryType(moov, stsd) === 'mp4a') continue;
    const entry = handler === 'vide' && !video ? avcEntry(moov, stsd) : null;
    const sizes = trackSize(moov, tkhd);
    if (!entry || !sizes) return null;
    video = { ...entry, trackWidth: sizes.width, trackHeight: sizes.height };
  }
  if (!video) return null;
  return {
    width: video.width || video.trackWidth,
    height: video.height || video.trackHeight,
    durationSeconds,
    codec: video.codec,
    brand: top.brand,
  };
}
