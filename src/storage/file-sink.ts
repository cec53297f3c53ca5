import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

export interface FileSinkOptions {
  /** Where in the file the first byte goes (a resumed download starts past what it has). */
  start: number;
  /** Bytes gathered while a write is under way, then written together in one system call. */
  highWaterMark: number;
  /** Each time this many more bytes are written, an fsync starts, so the final one has little left to do. */
  flushEvery: number;
  /** Sees each chunk, in order, before it is written; an error it returns fails the stream. */
  inspect(chunk: Buffer): Error | undefined;
  /**
   * Which written chunks give their memory back (see releaseChunk): 'read-ends' only for chunks
   * that come from an HTTP/1.1 connection with one request at a time; 'whole' otherwise.
   */
  release: ChunkRelease;
}

export type ChunkRelease = 'whole' | 'read-ends';

/** Small chunks are left to the collector: releasing them would not be worth a call. */
const RELEASE_FROM_BYTES = 16 * 1024;

/**
 * Gives a written chunk's memory back at once rather than at the next garbage collection.
 *
 * A download's chunks each own the memory of one socket read (64 KiB), which V8 frees only when
 * it collects the chunk, and it collects young objects by how much JavaScript allocates, not by
 * how many bytes arrived. Many copies at once would otherwise hold tens of MB of spent chunks
 * between collections (the external-memory limit that forces a collection is 64 MB). The chunk's
 * ArrayBuffer is detached (`transfer(0)`), which frees its memory.
 *
 * 'whole': only a chunk that is the whole of its ArrayBuffer is released; no other view of that
 * memory exists. 'read-ends': also the last piece of a read (the chunk that ends its ArrayBuffer),
 * which is right for one HTTP/1.1 response at a time and nothing else: its read is parsed front
 * to back, so whatever lies before that piece (the response headers, earlier pieces of a chunked
 * response) was handed over before it, and the sink writes in order. On an HTTP/2 connection one
 * read carries pieces of several responses, each written by its own sink: the last piece of one
 * says nothing of the others, so there only whole reads are released. A piece with bytes after
 * it is always left to the collector, as are shared and non-detachable memory.
 */
export function releaseChunk(chunk: Buffer, release: ChunkRelease): void {
  const memory = chunk.buffer;
  if (!(memory instanceof ArrayBuffer) || memory.detached || memory.byteLength < RELEASE_FROM_BYTES) return;
  if (chunk.byteOffset + chunk.byteLength !== memory.byteLength) return;
  if (chunk.byteOffset !== 0 && release !== 'read-ends') return;
  try {
    memory.transfer(0);
  } catch {
    // Not detachable (WebAssembly memory): the collector frees it as before.
  }
}

/** What is left of `chunks` once their first `written` bytes are on disk. */
function remainder(chunks: Buffer[], written: number): Buffer[] {
  let index = 0;
  while (index < chunks.length && written >= chunks[index]!.length) written -= chunks[index++]!.length;
  if (index === chunks.length) return [];
  return [chunks[index]!.subarray(written), ...chunks.slice(index + 1)];
}

/** Writes all of `chunks` at `position`, however many system calls it takes; answers the bytes written. */
async function writeAll(file: FileHandle, chunks: Buffer[], position: number, release: ChunkRelease): Promise<number> {
  let pending = chunks.filter((chunk) => chunk.length > 0);
  let written = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, position + written);
    if (bytesWritten === 0) throw Object.assign(new Error('the file took no bytes'), { code: 'EIO' });
    written += bytesWritten;
    pending = remainder(pending, bytesWritten);
  }
  for (const chunk of chunks) releaseChunk(chunk, release);
  return written;
}

/**
 * A writable stream into an open file, at explicit positions: a chunk is written as soon as no
 * write is under way, and chunks that arrive meanwhile (up to highWaterMark) go down together in
 * one writev, so reading the network and writing the disk overlap. A chunk may be released once
 * written (see releaseChunk), and fsyncs start along the way. Fed chunk by chunk (src/net/
 * response-feed.ts), it gets each one as it was read from the socket (an async iterator would
 * hand over merged copies, and the originals would wait for the collector). The caller owns the
 * file: it closes it once the stream has ended or failed.
 */
export class FileSink extends Writable {
  private readonly file: FileHandle;
  private readonly options: FileSinkOptions;
  private position: number;
  private flushedAt: number;
  private flushing: Promise<void> | undefined;

  constructor(file: FileHandle, options: FileSinkOptions) {
    super({ highWaterMark: options.highWaterMark });
    this.file = file;
    this.options = options;
    this.position = options.start;
    this.flushedAt = options.start;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.settle(this.writeChunks([chunk]), callback);
  }

  override _writev(entries: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.settle(this.writeChunks(entries.map((entry) => entry.chunk)), callback);
  }

  /** Hands the outcome to the stream; anything the stream itself throws then ends it, never unhandled. */
  private settle(done: Promise<void>, callback: (error?: Error | null) => void): void {
    done.then(() => callback(), callback).catch((error: unknown) => this.destroy(error as Error));
  }

  /** Ends only once a flush still running is done: the file must not be closed under it. */
  override _final(callback: (error?: Error | null) => void): void {
    void (this.flushing ?? Promise.resolve()).then(() => callback());
  }

  private async writeChunks(chunks: Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      const refused = this.options.inspect(chunk);
      if (refused) throw refused;
    }
    this.position += await writeAll(this.file, chunks, this.position, this.options.release);
    if (!this.flushing && this.position - this.flushedAt >= this.options.flushEvery) {
      this.flushedAt = this.position;
      // Only an early start of the final fsync; the storage's own sync decides.
      this.flushing = this.file
        .datasync()
        .catch(() => undefined)
        .finally(() => (this.flushing = undefined));
    }
  }
}
