import { execFile } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { promisify } from 'node:util';
import ffmpeg from '@ffmpeg-installer/ffmpeg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inspectMp4File, NotMp4Error } from '../src/storage/mp4.ts';
import { readPlainMp4 } from '../src/storage/mp4-moov.ts';
import { LocalVideoStorage } from '../src/storage/storage.ts';

const run = promisify(execFile);

/** Encodes a short H.264 test clip with the bundled ffmpeg. */
async function makeMp4(out: string, opts: { size?: string; rate?: number; faststart?: boolean } = {}): Promise<void> {
  const { size = '320x180', rate = 8, faststart = false } = opts;
  await run(ffmpeg.path, [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`, '-t', '2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    ...(faststart ? ['-movflags', '+faststart'] : []),
    out,
  ]);
}

/** Top-level box types in file order, to prove where moov sits. */
async function topLevelBoxes(path: string): Promise<string[]> {
  const data = await readFile(path);
  const types: string[] = [];
  for (let pos = 0; pos + 8 <= data.length; pos += data.readUInt32BE(pos)) types.push(data.toString('latin1', pos + 4, pos + 8));
  return types;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extendql-storage-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('LocalVideoStorage', () => {
  it('moves files in atomically and reads them back, whole and by range', async () => {
    const storage = new LocalVideoStorage(join(dir, 'store'));
    const tmp = await storage.tempDir();
    const src = join(tmp, 'upload.part');
    await writeFile(src, '0123456789');

    expect(await storage.stat('a.mp4')).toBeNull();
    await storage.putFile(src, 'a.mp4');
    await expect(stat(src)).rejects.toMatchObject({ code: 'ENOENT' }); // consumed
    expect(await storage.stat('a.mp4')).toEqual({ byteSize: 10 });

    expect(await text(await storage.read('a.mp4'))).toBe('0123456789');
    expect(await text(await storage.read('a.mp4', { start: 2, end: 5 }))).toBe('2345');
    expect(await text(await storage.read('a.mp4', { start: 9, end: 9 }))).toBe('9');
    await expect(storage.read('a.mp4', { start: 5, end: 2 })).rejects.toThrow(RangeError);

    // Replacing an object is a rename too: readers see old or new bytes, never a mix.
    await writeFile(src, 'new');
    await storage.putFile(src, 'a.mp4');
    expect(await text(await storage.read('a.mp4'))).toBe('new');

    // The temp area is not visible as an object and is left clean.
    expect(await readdir(tmp)).toEqual([]);
    await storage.delete('a.mp4');
    await storage.delete('a.mp4'); // idempotent
    expect(await storage.stat('a.mp4')).toBeNull();
    await expect(storage.read('a.mp4')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('accepts files from another directory', async () => {
    const storage = new LocalVideoStorage(join(dir, 'store2'));
    const src = join(dir, 'outside.bin');
    await writeFile(src, 'xyz');
    await storage.putFile(src, 'b.mp4');
    expect(await storage.stat('b.mp4')).toEqual({ byteSize: 3 });
  });

  it('makes its temp directory again when it went away under the running process (a mount over the storage directory)', async () => {
    const storage = new LocalVideoStorage(join(dir, 'store4'));
    const tmp = await storage.tempDir();
    await rm(tmp, { recursive: true });
    expect(await storage.tempDir()).toBe(tmp);
    await writeFile(join(tmp, 'again.part'), 'x');
    await storage.putFile(join(tmp, 'again.part'), 'again.mp4');
    expect(await storage.stat('again.mp4')).toEqual({ byteSize: 1 });
  });

  it('rejects keys that could escape the root', async () => {
    const storage = new LocalVideoStorage(join(dir, 'store3'));
    for (const key of ['../x.mp4', 'a/b.mp4', 'a\\b.mp4', '..', '.tmp', '', 'a..mp4', '/etc/passwd']) {
      await expect(storage.stat(key), key).rejects.toThrow(/invalid storage key/);
      await expect(storage.read(key), key).rejects.toThrow(/invalid storage key/);
      await expect(storage.delete(key), key).rejects.toThrow(/invalid storage key/);
    }
    await expect(storage.putFile(join(dir, 'nope'), '../x.mp4')).rejects.toThrow(/invalid storage key/);
  });
});

describe('inspectMp4File', () => {
  let moovAtEnd: string;
  let faststart: string;
  beforeAll(async () => {
    moovAtEnd = join(dir, 'moov-at-end.mp4');
    faststart = join(dir, 'faststart.mp4');
    await Promise.all([makeMp4(moovAtEnd), makeMp4(faststart, { faststart: true })]);
  });

  it('reads a faststart file', async () => {
    expect((await topLevelBoxes(faststart)).indexOf('moov')).toBeLessThan((await topLevelBoxes(faststart)).indexOf('mdat'));
    const info = await inspectMp4File(faststart);
    expect(info).toMatchObject({ width: 320, height: 180, brand: 'isom' });
    expect(info.codec).toMatch(/^avc1\./);
    expect(info.durationSeconds).toBeCloseTo(2, 1);
  });

  it('reads a file with moov at the end', async () => {
    const boxes = await topLevelBoxes(moovAtEnd);
    expect(boxes.indexOf('moov')).toBeGreaterThan(boxes.indexOf('mdat'));
    const info = await inspectMp4File(moovAtEnd);
    expect(info).toMatchObject({ width: 320, height: 180, brand: 'isom' });
    expect(info.durationSeconds).toBeCloseTo(2, 1);
  });

  it('skips mdat instead of reading it', async () => {
    const big = join(dir, 'big.mp4');
    await makeMp4(big, { size: '640x360', rate: 25 });
    const { size } = await stat(big);

    // Count bytes requested through FileHandle.read while inspecting.
    const fh = await open(big, 'r');
    const proto = Object.getPrototypeOf(fh) as { read: (...args: unknown[]) => unknown };
    await fh.close();
    let requested = 0;
    const original = proto.read;
    const spy = vi.spyOn(proto, 'read').mockImplementation(function (this: unknown, ...args: unknown[]) {
      requested += typeof args[2] === 'number' ? args[2] : 0;
      return original.apply(this, args);
    });
    try {
      expect((await inspectMp4File(big)).width).toBe(640);
    } finally {
      spy.mockRestore();
    }
    expect(size).toBeGreaterThan(300_000);
    expect(requested).toBeGreaterThan(0);
    expect(requested).toBeLessThan(size / 3);
  });

  it('rejects non-MP4 data', async () => {
    const html = join(dir, 'page.html');
    await writeFile(html, '<!doctype html><html><body>oops</body></html>');
    await expect(inspectMp4File(html)).rejects.toThrow(NotMp4Error);
    const empty = join(dir, 'empty.mp4');
    await writeFile(empty, '');
    await expect(inspectMp4File(empty)).rejects.toThrow(NotMp4Error);
  });

  it('rejects truncated files', async () => {
    const size = (await stat(moovAtEnd)).size;
    const noMoov = join(dir, 'no-moov.mp4');
    await copyFile(moovAtEnd, noMoov);
    await truncate(noMoov, Math.floor(size / 2));
    await expect(inspectMp4File(noMoov)).rejects.toThrow(/truncated|incomplete/);

    const halfMoov = join(dir, 'half-moov.mp4');
    await copyFile(moovAtEnd, halfMoov);
    await truncate(halfMoov, size - 100);
    await expect(inspectMp4File(halfMoov)).rejects.toThrow(NotMp4Error);

    // moov is intact but the media data after it is cut off.
    const shortMdat = join(dir, 'short-mdat.mp4');
    await copyFile(faststart, shortMdat);
    await truncate(shortMdat, Math.floor(size / 2));
    await expect(inspectMp4File(shortMdat)).rejects.toThrow(/truncated/);
  });

  it('reads plain H.264 files from their boxes, with the same answers as mp4box, and leaves the rest to mp4box', async () => {
    const withAudio = join(dir, 'with-audio.mp4');
    await run(ffmpeg.path, [
      '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=426x240:rate=24', '-f', 'lavfi', '-i', 'sine=d=3',
      '-t', '3', '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', withAudio,
    ]);
    const fragmented = join(dir, 'fragmented.mp4');
    await run(ffmpeg.path, [
      '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=8', '-t', '2',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', 'frag_keyframe+empty_moov', fragmented,
    ]);
    const big = join(dir, 'big.mp4');
    for (const file of [faststart, moovAtEnd, big, withAudio]) {
      const fh = await open(file, 'r');
      const direct = await readPlainMp4(fh, (await fh.stat()).size).finally(() => fh.close());
      expect(direct, file).not.toBeNull();
      expect(direct, file).toEqual(await inspectMp4File(file, { mp4box: true }));
    }
    expect((await inspectMp4File(withAudio)).codec).toMatch(/^avc1\.64/); // high profile

    // A sound track whose sample description says it has no entries is not "AAC sound": mp4box's to judge.
    const audioData = await readFile(withAudio);
    const soundStsd = audioData.indexOf('stsd', audioData.indexOf('soun', 0, 'latin1'), 'latin1');
    audioData.writeUInt32BE(0, soundStsd + 8); // entry_count
    const noEntries = join(dir, 'sound-without-entries.mp4');
    await writeFile(noEntries, audioData);
    const noEntriesFh = await open(noEntries, 'r');
    expect(await readPlainMp4(noEntriesFh, audioData.length).finally(() => noEntriesFh.close())).toBeNull();

    // Fragments are mp4box's: the direct read declines, and the answer is mp4box's.
    const fh = await open(fragmented, 'r');
    expect(await readPlainMp4(fh, (await fh.stat()).size).finally(() => fh.close())).toBeNull();
    expect(await inspectMp4File(fragmented)).toEqual(await inspectMp4File(fragmented, { mp4box: true }));

    // A file cut anywhere is declined too, so mp4box's errors stay the ones users see.
    const size = (await stat(faststart)).size;
    for (const cut of [16, 200, Math.floor(size / 2), size - 1]) {
      const truncated = join(dir, `cut-${cut}.mp4`);
      await copyFile(faststart, truncated);
      await truncate(truncated, cut);
      const cutFh = await open(truncated, 'r');
      expect(await readPlainMp4(cutFh, cut).finally(() => cutFh.close()), `cut at ${cut}`).toBeNull();
      await expect(inspectMp4File(truncated)).rejects.toThrow(NotMp4Error);
    }
  });

  it('reads hostile sample tables without a loop per claimed sample', async () => {
    // Billions of samples of one size in chunks of billions: answered at once (declined: the
    // claimed data is past the end of the file), and mp4box rejects the file as before.
    const data = await readFile(faststart);
    const stsz = data.indexOf('stsz', 0, 'latin1');
    const stsc = data.indexOf('stsc', 0, 'latin1');
    data.writeUInt32BE(1, stsz + 8); // sample_size: every sample 1 byte
    data.writeUInt32BE(0xffffffff, stsz + 12); // sample_count
    data.writeUInt32BE(0xffffffff, stsc + 16); // the first run's samples_per_chunk
    const hostile = join(dir, 'hostile-tables.mp4');
    await writeFile(hostile, data);
    const fh = await open(hostile, 'r');
    expect(await readPlainMp4(fh, data.length).finally(() => fh.close())).toBeNull();
  });

  it('rejects MP4s without a video track', async () => {
    const audio = join(dir, 'audio.mp4');
    await run(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=d=1', '-c:a', 'aac', audio]);
    await expect(inspectMp4File(audio)).rejects.toThrow(/no video track/);
  });
});
