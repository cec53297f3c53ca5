import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface StoredObject {
  byteSize: number;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** Refuses a range no storage could serve: negative, fractional, unsafe or reversed (a bug in the caller). */
export function assertValidByteRange(range: ByteRange): void {
  if (!(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
    throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
  }
}

/** Object storage for finished videos. Deliberately S3-shaped so an S3 adapter can implement it too. */
export interface VideoStorage {
  /**
   * Moves/uploads a finished local file into storage under key, atomically (readers never see a
   * partial object). The local file is consumed on success and kept on failure. A storage that
   * cannot take the write rejects with a StorageError.
   */
  putFile(localPath: string, key: string): Promise<void>;
  /** Size of the object, or null when absent. */
  stat(key: string): Promise<StoredObject | null>;
  /** A readable stream of the object's bytes, optionally a byte range (inclusive end). Rejects when the object is absent. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** Removes the object; deleting an absent object is not an error (like S3). */
  delete(key: string): Promise<void>;
  /** A directory on local disk for temporary downloads. */
  tempDir(): Promise<string>;
  /**
   * A URL that lets anyone holding it GET the object until it expires, without other credentials.
   * Only storage with such URLs (S3) has it; local files are served by this server instead.
   */
  presignedGetUrl?(key: string, expiresInSeconds: number): Promise<string>;
}

/** Local errno codes that mean the storage itself is failing (not the video, not the origin). */
const STORAGE_ERRNO: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EIO: 'the disk reported an I/O error',
};

/**
 * Video storage could not take a write: a full or read-only disk, an I/O error, an object store
 * that refused the upload. Worth retrying later; says nothing of where (no paths, no endpoints).
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor(reason: string, options?: ErrorOptions) {
    super(`Video storage is unavailable: ${reason}`, options);
  }
}

/** A StorageError for a storage failure (by errno), else the error unchanged. */
export function asStorageError(error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const reason = code ? STORAGE_ERRNO[code] : undefined;
  return reason ? new StorageError(`${reason} (${code})`, { cause: error }) : error;
}

const KEY_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Throws unless key is a plain file name: no separators, no `..`, no leading dot (keeps `.tmp` private). */
export function assertValidKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.includes('..')) {
    throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** Stores objects as files in one directory; temp files live in `<root>/.tmp` so the final move is a same-filesystem rename. */
export class LocalVideoStorage implements VideoStorage {
  private readonly tmp: string;

  private readonly rootDir: string;
  constructor(rootDir: string) {
    this.rootDir = rootDir;
    this.tmp = join(rootDir, '.tmp');
  }

  /**
   * Makes sure the temp directory exists, every time: the directory can disappear under a running
   * process (a volume or tmpfs mounted over the storage directory, a clean-up), and one cached
   * check would then leave every later download failing on a missing directory.
   */
  private async init(): Promise<void> {
    await mkdir(this.tmp, { recursive: true });
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    return join(this.rootDir, key);
  }

  async putFile(localPath: string, key: string): Promise<void> {
    try {
      await this.moveIn(localPath, key);
    } catch (err) {
      throw asStorageError(err);
    }
  }

  private async moveIn(localPath: string, key: string): Promise<void> {
    const dest = this.pathOf(key);
    await this.init();
    // Flush data before the rename so a crash can't leave a renamed-but-empty object.
    const fh = await open(localPath, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(localPath, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      // Source is on another filesystem: copy next to the destination, then rename atomically.
      const staging = join(this.tmp, `${randomUUID()}.put`);
      try {
        await copyFile(localPath, staging);
        await rename(staging, dest);
      } catch (copyErr) {
        await rm(staging, { force: true });
        throw copyErr;
      }
      await unlink(localPath);
    }
  }

  async stat(key: string): Promise<StoredObject | null> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { byteSize: s.size } : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathOf(key);
    if (range) assertValidByteRange(range);
    // Open eagerly so a missing object rejects here instead of erroring later on the stream.
    const fh = await open(path, 'r');
    // autoClose (default) releases the handle when the stream ends or is destroyed.
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async tempDir(): Promise<string> {
    await this.init().catch((err: unknown) => {
      throw asStorageError(err);
    });
    return this.tmp;
  }
}

/**
 * Removes temporary files older than `olderThanMs` from `dir`: downloads a process was killed in
 * the middle of. Younger files may belong to a download still running in another process.
 */
export async function removeStaleTempFiles(dir: string, olderThanMs: number): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (info?.isFile() && Date.now() - info.mtimeMs > olderThanMs) {
      await unlink(path).catch(() => {});
      removed++;
    }
  }
  return removed;
}
