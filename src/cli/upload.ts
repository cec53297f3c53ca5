import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { UsageError } from './errors.ts';

/** A local file sent as one variable of a GraphQL multipart request. */
export interface Upload {
  path: string;
  /** The file's name as the server sees it. */
  name: string;
  type: string;
  bytes: number;
  /** Where the file goes in the operation, e.g. `variables.input.video`. */
  variablePath: string;
  /** Called as the file's bytes are handed to the connection. */
  onProgress(sentBytes: number, totalBytes: number): void;
}

/** The file at `path`, checked before anything is sent: it must be a readable regular file. */
export async function uploadOf(path: string, variablePath: string): Promise<Omit<Upload, 'onProgress'>> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--video ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new UsageError(`--video ${path} is not a file`);
  const type = extname(path).toLowerCase() === '.mov' ? 'video/quicktime' : 'video/mp4';
  return { path, name: basename(path), type, bytes: info.size, variablePath };
}

/** A file name for a quoted multipart header: no quotes, backslashes or line breaks. */
const headerSafe = (name: string) => name.replace(/["\\\r\n]/g, '_');

/**
 * A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)
 * whose file is streamed from disk as the connection takes it, never read whole into memory.
 * Its length is known, so the server can refuse an oversize body before reading it.
 */
export function multipartBody(operations: object, upload: Upload): { body: ReadableStream<Uint8Array>; contentType: string; length: number } {
  const boundary = `extendql-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    [
      `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify(operations)}\r\n`,
      `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${JSON.stringify({ 0: [upload.variablePath] })}\r\n`,
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="${headerSafe(upload.name)}"\r\nContent-Type: ${upload.type}\r\n\r\n`,
    ].join(''),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let file: AsyncIterator<Buffer> | undefined;
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    // Pulled as the connection drains: each chunk read from disk is one the connection took.
    async pull(controller) {
      if (!file) {
        file = createReadStream(upload.path, { highWaterMark: 64 * 1024 })[Symbol.asyncIterator]();
        controller.enqueue(head);
        return;
      }
      const next = await file.next();
      if (next.done) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      sent += next.value.length;
      upload.onProgress(sent, upload.bytes);
      controller.enqueue(next.value);
    },
    async cancel() {
      await file?.return?.();
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, length: head.length + upload.bytes + tail.length };
}
