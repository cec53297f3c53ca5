import { mkdir, open, unlink } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { contentTypeOfKey } from './video-types.ts';
import { assertValidByteRange, assertValidKey, StorageError, type ByteRange, type StoredObject, type VideoStorage } from './storage.ts';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  /** An S3-compatible server's URL; undefined for AWS S3. */
  endpoint?: string;
  /** bucket-in-path URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Undefined: the SDK's default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Prepended to every key as is, e.g. `videos/`. */
  prefix?: string;
  /** Local directory for downloads on their way to the bucket. */
  tempDir: string;
}

/** Stored with each object for whoever reads the bucket directly; the video route uses the database's type. */

/** What `read` rejects with for an absent object; `code` matches LocalVideoStorage's ENOENT. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  readonly code = 'ENOENT';
}

/** Stores videos as objects in an S3-compatible bucket. */
export class S3VideoStorage implements VideoStorage {
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly tmp: string;
  private ready: Promise<void> | undefined;

  constructor(options: S3StorageOptions) {
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      // Newer SDKs add CRC checksums and aws-chunked bodies to every request and validate them on
      // responses; many S3-compatible servers reject or mangle those. Checksum only where S3 requires it.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    this.tmp = options.tempDir;
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return `${this.prefix}${key}`;
  }

  async putFile(localPath: string, key: string): Promise<void> {
    const Key = this.objectKey(key);
    const fh = await open(localPath, 'r');
    // autoClose off: the handle is closed below even when the upload stops reading early.
    const body = fh.createReadStream({ autoClose: false });
    try {
      const { size } = await fh.stat();
      // Streams the file in 5 MiB parts, 4 in flight at most (~20 MiB of memory), never the whole video.
      // A PUT or a completed multipart upload appears at once; a failed multipart upload is aborted.
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key, Body: body, ContentLength: size, ContentType: contentTypeOfKey(key) },
      });
      await upload.done();
    } catch (err) {
      // Whatever the bucket said (or that it could not be reached): a write that can be tried again.
      const name = err instanceof S3ServiceException ? err.name : ((err as NodeJS.ErrnoException).code ?? (err as Error).name);
      throw new StorageError(`the object store did not take the upload (${name})`, { cause: err });
    } finally {
      body.destroy();
      await fh.close();
    }
    await unlink(localPath);
  }

  async stat(key: string): Promise<StoredObject | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { byteSize: head.ContentLength ?? 0 };
    } catch (err) {
      // HEAD responses have no body, so a missing object is a bare NotFound (as is a missing bucket).
      if (err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey')) return null;
      throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const Key = this.objectKey(key);
    if (range) assertValidByteRange(range);
    try {
      const { Body } = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      // In Node the body is the HTTP response itself; destroying it releases the connection.
      if (!(Body instanceof Readable)) throw new Error(`no readable body for ${Key}`);
      return Body;
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') {
        throw new ObjectNotFoundError(`no object ${Key} in bucket ${this.bucket}`, { cause: err });
      }
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 for absent keys too, so this is idempotent.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  /** SigV4 query-string signing: valid 1 s to 7 days (604800 s), the range S3 accepts. */
  async presignedGetUrl(key: string, expiresInSeconds: number): Promise<string> {
    if (!(Number.isInteger(expiresInSeconds) && expiresInSeconds >= 1 && expiresInSeconds <= 604_800)) {
      throw new RangeError(`a presigned URL lasts 1 to 604800 seconds, not ${expiresInSeconds}`);
    }
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), { expiresIn: expiresInSeconds });
  }

  async tempDir(): Promise<string> {
    this.ready ??= mkdir(this.tmp, { recursive: true }).then(() => undefined);
    await this.ready;
    return this.tmp;
  }

  /** Closes the client's idle connections. */
  close(): void {
    this.client.destroy();
  }
}
