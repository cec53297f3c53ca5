import type { Readable } from 'node:stream';
import { asStorageError, type ByteRange, type StoredObject, type VideoStorage } from '../../src/storage/storage.ts';

/**
 * A real storage whose next puts fail the way a full disk fails (ENOSPC, or another errno), for
 * machines where a tiny file system cannot be mounted. Everything else goes to the wrapped storage.
 */
export class FailingStorage implements VideoStorage {
  /** Puts tried, failed ones included. */
  puts = 0;
  private failuresLeft = 0;

  private readonly inner: VideoStorage;
  private readonly errno;
  constructor(
    inner: VideoStorage,
    errno = 'ENOSPC',
  ) {
    this.inner = inner;
    this.errno = errno;
  }

  failNextPuts(times: number): void {
    this.failuresLeft = times;
  }

  async putFile(localPath: string, key: string): Promise<void> {
    this.puts++;
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw asStorageError(Object.assign(new Error(`${this.errno}: write failed`), { code: this.errno }));
    }
    await this.inner.putFile(localPath, key);
  }

  stat(key: string): Promise<StoredObject | null> {
    return this.inner.stat(key);
  }

  read(key: string, range?: ByteRange): Promise<Readable> {
    return this.inner.read(key, range);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  tempDir(): Promise<string> {
    return this.inner.tempDir();
  }
}
