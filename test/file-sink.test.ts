import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { getEventListeners } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSink, releaseChunk } from '../src/storage/file-sink.ts';
import { deadline } from '../src/net/deadline.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extendql-file-sink-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A chunk that owns its memory, like one socket read. */
const ownChunk = (size: number, fill: number) => Buffer.from(new ArrayBuffer(size)).fill(fill);

describe('FileSink', () => {
  it('writes every chunk at its place, gives each large chunk its memory back once written, and leaves small ones alone', async () => {
    const file = join(dir, 'copy.bin');
    const large = [ownChunk(64 * 1024, 1), ownChunk(64 * 1024, 2), ownChunk(40 * 1024, 3)];
    const small = Buffer.from('tail'); // from Node's shared pool: never detached
    const expected = Buffer.concat([...large, small]);
    const seen: number[] = [];
    const fh = await open(file, 'w');
    await pipeline(
      Readable.from([...large, small], { objectMode: false }),
      new FileSink(fh, { start: 0, highWaterMark: 1024 * 1024, flushEvery: 100 * 1024, release: 'whole', inspect: (chunk) => void seen.push(chunk.length) }),
    );
    await fh.close();
    expect(await readFile(file)).toEqual(expected);
    expect(seen).toEqual([65536, 65536, 40960, 4]);
    for (const chunk of large) expect(chunk.buffer.detached).toBe(true);
    expect(small.buffer.detached).toBe(false);
    expect(small.toString()).toBe('tail');
  });

  it('starts at the given position (a resumed download) and stops at the first refused chunk', async () => {
    const file = join(dir, 'resumed.bin');
    const fh = await open(file, 'w');
    await fh.write(Buffer.from('head-'), 0, 5, 0);
    await pipeline(Readable.from([Buffer.from('body')]), new FileSink(fh, { start: 5, highWaterMark: 16, flushEvery: 1 << 30, release: 'whole', inspect: () => undefined }));
    const refused = new Error('too large');
    const sink = new FileSink(fh, { start: 9, highWaterMark: 16, flushEvery: 1 << 30, release: 'whole', inspect: (chunk) => (chunk.toString() === 'no' ? refused : undefined) });
    await expect(pipeline(Readable.from([Buffer.from('!'), Buffer.from('no'), Buffer.from('never')]), sink)).rejects.toBe(refused);
    await fh.close();
    expect((await readFile(file)).toString()).toBe('head-body!');
  });

  it("'read-ends' releases a read shared by several pieces once its last piece is on disk; 'whole' leaves it alone", async () => {
    for (const release of ['read-ends', 'whole'] as const) {
      // A socket read of 100 KiB: response headers, then three pieces of the body, as undici hands them over.
      const read = Buffer.from(new ArrayBuffer(100 * 1024));
      read.subarray(0, 4 * 1024).fill(1);
      read.subarray(4 * 1024).forEach((_, i, piece) => (piece[i] = i % 251));
      const expected = Buffer.from(read.subarray(4 * 1024)); // a copy: the read itself may be released
      const pieces = [read.subarray(4 * 1024, 36 * 1024), read.subarray(36 * 1024, 68 * 1024), read.subarray(68 * 1024)];
      const file = join(dir, `pieces-${release}.bin`);
      const fh = await open(file, 'w');
      const sink = new FileSink(fh, { start: 0, highWaterMark: 16 * 1024, flushEvery: 1 << 30, release, inspect: () => undefined });
      const write = (chunk: Buffer) => new Promise<void>((resolve, reject) => sink.write(chunk, (error) => (error ? reject(error) : resolve())));
      await write(pieces[0]!);
      await write(pieces[1]!);
      // Pieces with more of the read after them leave it alone: later pieces are still to come.
      expect(read.buffer.detached).toBe(false);
      expect(pieces[1]!.length).toBe(32 * 1024);
      // The last piece ends the read. Over HTTP/1.1 ('read-ends') the read then goes; over HTTP/2
      // ('whole') the same read may hold another response's pieces, not yet written by their sink.
      await write(pieces[2]!);
      expect(read.buffer.detached, release).toBe(release === 'read-ends');
      await new Promise<void>((resolve) => sink.end(resolve));
      await fh.close();
      expect(await readFile(file)).toEqual(expected);
    }
  });

  it('leaves a piece with more of its read after it alone (the framing of a chunked response)', async () => {
    const read = Buffer.from(new ArrayBuffer(64 * 1024)).fill(9);
    const piece = read.subarray(10, 60 * 1024);
    const file = join(dir, 'framed.bin');
    const fh = await open(file, 'w');
    await pipeline(Readable.from([piece]), new FileSink(fh, { start: 0, highWaterMark: 16 * 1024, flushEvery: 1 << 30, release: 'whole', inspect: () => undefined }));
    await fh.close();
    expect(read.buffer.detached).toBe(false);
    expect((await readFile(file)).length).toBe(60 * 1024 - 10);
  });

  it('does not touch memory it cannot release', () => {
    const wasm = Buffer.from(new WebAssembly.Memory({ initial: 1 }).buffer);
    releaseChunk(wasm, 'read-ends');
    expect(wasm.length).toBe(65536);
    const shared = Buffer.from(new SharedArrayBuffer(32 * 1024));
    releaseChunk(shared, 'read-ends');
    expect(shared.length).toBe(32 * 1024);
  });
});

describe('deadline', () => {
  it('aborts with a TimeoutError after its time, and with the parent reason when the parent aborts first', async () => {
    const timed = deadline(20);
    await new Promise((resolve) => timed.signal.addEventListener('abort', resolve));
    expect((timed.signal.reason as Error).name).toBe('TimeoutError');

    const parent = new AbortController();
    const joined = deadline(60_000, parent.signal);
    parent.abort(new Error('stopping'));
    expect(joined.signal.aborted).toBe(true);
    expect((joined.signal.reason as Error).message).toBe('stopping');
    joined.clear();

    const already = deadline(60_000, AbortSignal.abort(new Error('gone')));
    expect((already.signal.reason as Error).message).toBe('gone');
    already.clear();
  });

  it('once cleared, neither fires nor stays listening on the parent (AbortSignal.timeout and .any cannot be cleared)', async () => {
    const parent = new AbortController();
    const limits = Array.from({ length: 50 }, () => deadline(20, parent.signal));
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(50);
    for (const limit of limits) limit.clear();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 60));
    parent.abort();
    expect(limits.every((limit) => !limit.signal.aborted)).toBe(true);
  });
});
