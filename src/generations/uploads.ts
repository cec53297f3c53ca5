import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../errors.ts';
import { inspectMp4File, NotMp4Error } from '../storage/mp4.ts';
import type { VideoStorage } from '../storage/storage.ts';
import { contentTypeOf, type VideoContentType } from '../storage/video-types.ts';
import { SOURCE_VIDEO_MAX_BYTES, SourceVideoRules, type SourceVideo, type UploadedFile } from './rules.ts';

/** An upload that passed every rule, still in a temporary file. */
export interface ReceivedUpload {
  tempPath: string;
  sha256: string;
  video: SourceVideo;
  contentType: VideoContentType;
}

/**
 * A file written to a temporary file as it arrived, hashed and counted on the way. Bytes past
 * the largest source video are counted but not kept, so `size` is the file's real size while the
 * disk holds at most SOURCE_VIDEO_MAX_BYTES of it. Whoever spooled it removes `path`.
 */
export class SpooledFile implements UploadedFile {
  readonly name: string;
  readonly type: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  constructor(
    name: string,
    type: string,
    path: string,
    size: number,
    /** Of the whole file; meaningful only when `complete`. */
    sha256: string,
  ) {
    this.name = name;
    this.type = type;
    this.path = path;
    this.size = size;
    this.sha256 = sha256;
  }

  /** Whether every byte is on disk (the file is not over the source limit). */
  get complete(): boolean {
    return this.size <= SOURCE_VIDEO_MAX_BYTES;
  }

  stream(): ReadableStream<Uint8Array> {
    return Readable.toWeb(createReadStream(this.path)) as ReadableStream<Uint8Array>;
  }
}

/**
 * Writes `source` to a new file in `dir` with backpressure (memory stays at a few stream buffers
 * whatever the size). On failure (the source errors or is destroyed, the disk is full) the
 * partial file is removed before this rejects.
 */
export async function spoolToFile(source: Readable, dir: string, meta: { name: string; type: string }): Promise<SpooledFile> {
  const path = join(dir, `${randomBytes(12).toString('hex')}.upload.part`);
  const handle = await open(path, 'wx');
  const hash = createHash('sha256');
  let bytes = 0;
  const keep = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const kept = Math.max(0, Math.min(chunk.length, SOURCE_VIDEO_MAX_BYTES + 1 - bytes));
      bytes += chunk.length;
      if (kept === 0) return done();
      const part = kept === chunk.length ? chunk : chunk.subarray(0, kept);
      hash.update(part);
      done(null, part);
    },
  });
  try {
    // Destroyed while the file was being opened: a pipeline would wait for events already past.
    if (source.destroyed) throw new Error('the upload stopped before it was written');
    await pipeline(source, keep, handle.createWriteStream());
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true });
    throw error;
  }
  return new SpooledFile(meta.name, meta.type, path, bytes, hash.digest('hex'));
}

const PATH = ['input', 'video'];
const invalid = (message: string) => new InvalidInputError([{ path: PATH, message }]);
const sizeRule = (bytes: number) => SourceVideoRules.shape.byteSize.safeParse(bytes).error?.issues[0]?.message;

/**
 * Checks an uploaded file against SourceVideoRules with a real MP4 parser. A file the HTTP layer
 * already spooled (SpooledFile) is checked where it lies; any other is written to a temporary
 * file first. Throws InvalidInputError naming the broken limit; a temporary file made here is
 * not kept then.
 */
export async function receiveUpload(file: UploadedFile, storage: VideoStorage): Promise<ReceivedUpload> {
  const declared = sizeRule(file.size);
  if (declared) throw invalid(declared);

  const spooled =
    file instanceof SpooledFile
      ? file
      : await spoolToFile(Readable.from(file.stream() as unknown as AsyncIterable<Uint8Array>), await storage.tempDir(), { name: file.name, type: '' });
  try {
    if (!spooled.complete) throw invalid(sizeRule(spooled.size) ?? 'must be at most 50 MB');
    let info;
    try {
      info = await inspectMp4File(spooled.path);
    } catch (error) {
      if (error instanceof NotMp4Error) throw invalid(`must be a readable MP4 or MOV file: ${error.message}`);
      throw error;
    }
    const container = info.brand.trim() === 'qt' ? 'mov' : 'mp4';
    const checked = SourceVideoRules.safeParse({
      container,
      byteSize: spooled.size,
      durationSeconds: info.durationSeconds,
      width: info.width,
      height: info.height,
    });
    if (!checked.success) throw new InvalidInputError(checked.error.issues.map((issue) => ({ path: PATH, message: issue.message })));
    return {
      tempPath: spooled.path,
      sha256: spooled.sha256,
      video: checked.data,
      contentType: contentTypeOf(container),
    };
  } catch (error) {
    if (spooled !== file) await rm(spooled.path, { force: true });
    throw error;
  }
}
