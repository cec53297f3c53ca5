import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../errors.js';
import { inspectMp4File, NotMp4Error } from '../storage/mp4.js';
import type { VideoStorage } from '../storage/storage.js';
import { SOURCE_VIDEO_MAX_BYTES, SourceVideoRules, type SourceVideo, type UploadedFile } from './rules.js';

/** An upload that passed every rule, still in a temporary file. */
export interface ReceivedUpload {
  tempPath: string;
  sha256: string;
  video: SourceVideo;
  contentType: 'video/mp4' | 'video/quicktime';
}

const PATH = ['input', 'video'];
const invalid = (message: string) => new InvalidInputError([{ path: PATH, message }]);

class TooLarge extends Error {}

/**
 * Writes an uploaded file to a temporary file (hashing it on the way) and checks it against
 * SourceVideoRules with a real MP4 parser. Throws InvalidInputError naming the broken limit;
 * nothing is kept then.
 */
export async function receiveUpload(file: UploadedFile, storage: VideoStorage): Promise<ReceivedUpload> {
  const declared = SourceVideoRules.shape.byteSize.safeParse(file.size);
  if (!declared.success) throw invalid(declared.error.issues[0]!.message);

  const tempPath = join(await storage.tempDir(), `${randomBytes(12).toString('hex')}.upload.part`);
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > SOURCE_VIDEO_MAX_BYTES) return done(new TooLarge());
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.from(file.stream() as unknown as AsyncIterable<Uint8Array>), count, createWriteStream(tempPath, { flags: 'wx' }));
    } catch (error) {
      if (error instanceof TooLarge) throw invalid(SourceVideoRules.shape.byteSize.safeParse(bytes).error?.issues[0]?.message ?? 'must be at most 50 MB');
      throw error;
    }

    let info;
    try {
      info = await inspectMp4File(tempPath);
    } catch (error) {
      if (error instanceof NotMp4Error) throw invalid(`must be an MP4 or MOV file (${error.message})`);
      throw error;
    }
    const container = info.brand.trim() === 'qt' ? 'mov' : 'mp4';
    const checked = SourceVideoRules.safeParse({
      container,
      byteSize: bytes,
      durationSeconds: info.durationSeconds,
      width: info.width,
      height: info.height,
    });
    if (!checked.success) throw new InvalidInputError(checked.error.issues.map((issue) => ({ path: PATH, message: issue.message })));
    return {
      tempPath,
      sha256: hash.digest('hex'),
      video: checked.data,
      contentType: container === 'mov' ? 'video/quicktime' : 'video/mp4',
    };
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}
