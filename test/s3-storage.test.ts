import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createVideoStorage } from '../src/storage/index.ts';
import { ObjectNotFoundError, S3VideoStorage, type S3StorageOptions } from '../src/storage/s3.ts';
import { LocalVideoStorage, StorageError } from '../src/storage/storage.ts';
import { DeleteGenerationDocument, ExtendVideoDocument } from './gql/graphql.ts';
import { startS3Server, type S3Server } from './helpers/s3-server.ts';
import { startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

let s3: S3Server;
let dir: string;
beforeAll(async () => {
  s3 = await startS3Server();
  dir = await mkdtemp(join(tmpdir(), 'extendql-s3-test-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

function options(overrides: Partial<S3StorageOptions> = {}): S3StorageOptions {
  return {
    bucket: s3.bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    prefix: 'videos/',
    tempDir: join(dir, 'tmp'),
    ...overrides,
  };
}

describe('S3VideoStorage', () => {
  let storage: S3VideoStorage;
  beforeAll(() => {
    storage = new S3VideoStorage(options());
  });
  afterAll(() => storage?.close());

  async function localFile(data: Uint8Array | string): Promise<string> {
    const path = join(await storage.tempDir(), `upload-${randomBytes(4).toString('hex')}.part`);
    await writeFile(path, data);
    return path;
  }

  it('uploads a large file in parts and reads it back byte-identical, whole and by range', async () => {
    const data = randomBytes(6 * MiB + 12_345);
    const src = await localFile(data);

    expect(await storage.stat('big.mp4')).toBeNull();
    await storage.putFile(src, 'big.mp4');
    await expect(stat(src)).rejects.toMatchObject({ code: 'ENOENT' }); // consumed
    expect(await readdir(await storage.tempDir())).toEqual([]);

    // The server saw a completed multipart upload (POST), not a single PUT.
    expect(s3.created.filter((c) => c.key === 'videos/big.mp4').map((c) => c.eventName)).toEqual(['ObjectCreated:Post']);
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'videos/big.mp4' }));
    expect(head).toMatchObject({ ContentLength: data.length, ContentType: 'video/mp4' });

    expect(await storage.stat('big.mp4')).toEqual({ byteSize: data.length });
    expect(sha256(await buffer(await storage.read('big.mp4')))).toBe(sha256(data));

    // Ranges are inclusive, including one across the boundary between the first two parts.
    const ranges = [
      { start: 0, end: 99 },
      { start: 5 * MiB - 10, end: 5 * MiB + 9 },
      { start: data.length - 1, end: data.length - 1 },
    ];
    for (const range of ranges) {
      expect(await buffer(await storage.read('big.mp4', range))).toEqual(data.subarray(range.start, range.end + 1));
    }
    await expect(storage.read('big.mp4', { start: 5, end: 2 })).rejects.toThrow(RangeError);
    await expect(storage.read('big.mp4', { start: -1, end: 2 })).rejects.toThrow(RangeError);
  });

  it('puts small files in one PUT, replaces objects, deletes idempotently and reports absence like local storage', async () => {
    await storage.putFile(await localFile('0123456789'), 'small.mp4');
    expect(s3.created.filter((c) => c.key === 'videos/small.mp4').map((c) => c.eventName)).toEqual(['ObjectCreated:Put']);
    expect(await storage.stat('small.mp4')).toEqual({ byteSize: 10 });
    expect((await buffer(await storage.read('small.mp4', { start: 2, end: 5 }))).toString()).toBe('2345');

    await storage.putFile(await localFile('new'), 'small.mp4');
    expect((await buffer(await storage.read('small.mp4'))).toString()).toBe('new');
    // Uploaded QuickTime sources share the storage; the object carries a matching type.
    await storage.putFile(await localFile('mov'), 'source.mov');
    expect((await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'videos/source.mov' }))).ContentType).toBe('video/quicktime');
    await storage.delete('source.mov');

    await storage.delete('small.mp4');
    await storage.delete('small.mp4'); // idempotent
    await storage.delete('never-existed.mp4');
    expect(await storage.stat('small.mp4')).toBeNull();
    const absent = await storage.read('small.mp4').catch((err: unknown) => err);
    expect(absent).toBeInstanceOf(ObjectNotFoundError);
    // The same shape as LocalVideoStorage's rejection for an absent file.
    expect(absent).toMatchObject({ code: 'ENOENT' });
    await expect(new LocalVideoStorage(join(dir, 'local')).read('small.mp4')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects keys that could escape the prefix, before touching the bucket or the file', async () => {
    const src = await localFile('keep me');
    for (const key of ['../x.mp4', 'a/b.mp4', 'a\\b.mp4', '..', '.tmp', '', 'a..mp4', '/etc/passwd']) {
      await expect(storage.stat(key), key).rejects.toThrow(/invalid storage key/);
      await expect(storage.read(key), key).rejects.toThrow(/invalid storage key/);
      await expect(storage.delete(key), key).rejects.toThrow(/invalid storage key/);
      await expect(storage.putFile(src, key), key).rejects.toThrow(/invalid storage key/);
    }
    expect((await stat(src)).size).toBe(7);
    await rm(src);
  });

  it('keeps the local file when the upload fails', async () => {
    const missing = new S3VideoStorage(options({ bucket: 'no-such-bucket' }));
    try {
      const src = await localFile(randomBytes(1000));
      // A StorageError (retried by the worker) that names what the bucket said and keeps its cause.
      const err = await missing.putFile(src, 'lost.mp4').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', cause: { name: 'NoSuchBucket' } });
      expect((err as Error).message).toContain('NoSuchBucket');
      expect((await stat(src)).size).toBe(1000);
      await rm(src);
    } finally {
      missing.close();
    }
  });

  it('works without a prefix', async () => {
    const bare = new S3VideoStorage(options({ prefix: undefined }));
    try {
      await bare.putFile(await localFile('abc'), 'bare.mp4');
      expect((await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'bare.mp4' }))).ContentLength).toBe(3);
      await bare.delete('bare.mp4');
    } finally {
      bare.close();
    }
  });
});

describe('S3 configuration', () => {
  it('is off by default and chooses local storage', async () => {
    const config = loadConfig({});
    expect(config.s3).toBeNull();
    const configured = await createVideoStorage(config);
    expect(configured.storage).toBeInstanceOf(LocalVideoStorage);
    expect(configured.description).toEqual({ kind: 'local', dir: config.storageDir });
  });

  it('reads the S3 variables with defaults and chooses S3 storage', async () => {
    const config = loadConfig({ DATA_DIR: dir, S3_BUCKET: 'videos', S3_ENDPOINT: 'http://user:pw@127.0.0.1:9000', S3_PREFIX: 'extendql/videos', S3_ACCESS_KEY_ID: 'id', S3_SECRET_ACCESS_KEY: 'secret-value' });
    expect(config.s3).toEqual({
      bucket: 'videos',
      endpoint: 'http://user:pw@127.0.0.1:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      prefix: 'extendql/videos/',
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret-value' },
    });
    const configured = await createVideoStorage(config);
    try {
      expect(configured.storage).toBeInstanceOf(S3VideoStorage);
      // The description is logged: no credentials, not even ones inside the endpoint URL.
      expect(configured.description).toEqual({ kind: 's3', bucket: 'videos', endpoint: 'http://127.0.0.1:9000', prefix: 'extendql/videos/' });
    } finally {
      configured.close();
    }

    // AWS itself: virtual-hosted style, the SDK's credential chain.
    expect(loadConfig({ S3_BUCKET: 'videos', S3_REGION: 'eu-west-1' }).s3).toMatchObject({ region: 'eu-west-1', forcePathStyle: false, prefix: '', credentials: undefined, endpoint: undefined });
    expect(loadConfig({ S3_BUCKET: 'videos', S3_ENDPOINT: 'https://s3.example', S3_FORCE_PATH_STYLE: 'false' }).s3?.forcePathStyle).toBe(false);
  });

  it.each([
    [{ S3_ENDPOINT: 'http://127.0.0.1:9000' }, 'S3_BUCKET'],
    [{ S3_BUCKET: 'videos', S3_ACCESS_KEY_ID: 'id' }, 'S3_SECRET_ACCESS_KEY'],
    [{ S3_BUCKET: 'videos', S3_SECRET_ACCESS_KEY: 'secret-value' }, 'S3_ACCESS_KEY_ID'],
    [{ S3_BUCKET: 'videos', S3_ENDPOINT: 'ftp://x' }, 'S3_ENDPOINT'],
    [{ S3_BUCKET: 'videos', S3_PREFIX: '../up' }, 'S3_PREFIX'],
    [{ S3_BUCKET: 'videos', S3_PREFIX: '/abs' }, 'S3_PREFIX'],
    [{ S3_BUCKET: 'videos', S3_FORCE_PATH_STYLE: 'maybe' }, 'S3_FORCE_PATH_STYLE'],
  ])('stops on %j and names %s, without the secret', (env, name) => {
    const error = (() => {
      try {
        loadConfig(env);
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toContain(name);
    expect(String(error)).not.toContain('secret-value');
  });
});

describe('S3 storage end to end', () => {
  let stack: Stack;
  beforeAll(async () => {
    // close() fails the suite if the secret shows up in any log line or response.
    stack = await startStack({ env: s3.env, secrets: { 'the S3 secret access key': s3.secretAccessKey } });
  });
  afterAll(() => stack?.close());

  it('stores a generated video in the bucket and serves it from there, whole and by range', async () => {
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/clip.mp4', prompt: 'waves roll in' } });
    expect(result.errors).toBeUndefined();
    const accepted = result.data!.extendVideo;
    if (accepted.__typename !== 'ExtendVideoSuccess') throw new Error(accepted.__typename);
    const done = await waitForTerminal(stack, accepted.generation.id);
    expect(done.status).toBe('SUCCEEDED');
    const video = done.video!;

    // The object is in the bucket, checked with the SDK directly.
    const key = new URL(video.url).pathname.replace('/videos/', '');
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: key }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).toEqual([[key, video.byteSize]]);
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    expect(object.ContentType).toBe('video/mp4');
    const stored = await object.Body!.transformToByteArray();
    expect(sha256(stored)).toBe(video.sha256);

    // Nothing on local disk: no storage directory, and the download area is empty again.
    await expect(readdir(stack.config.storageDir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(stack.config.dataDir, 'tmp', 'videos'))).toEqual([]);

    const response = await fetch(video.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('video/mp4');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBe(video.byteSize);
    expect(sha256(bytes)).toBe(video.sha256);

    const ranged = await fetch(video.url, { headers: { range: 'bytes=100-1099' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(bytes.subarray(100, 1100));

    // The startup log names the bucket; the secret is in no log line (checked again at close).
    const logs = stack.logs.join('\n');
    expect(logs).toContain(`"bucket":"${s3.bucket}"`);
    expect(logs).not.toContain(s3.secretAccessKey);
  });

  it('deleteGeneration removes the object from the bucket, and its URL answers 404', async () => {
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/clip.mp4', prompt: 'deleted from the bucket' } });
    const accepted = result.data!.extendVideo;
    if (accepted.__typename !== 'ExtendVideoSuccess') throw new Error(accepted.__typename);
    const video = (await waitForTerminal(stack, accepted.generation.id)).video!;
    const key = new URL(video.url).pathname.replace('/videos/', '');
    const listed = async () => (await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: key }))).Contents ?? [];
    expect(await listed()).toHaveLength(1);

    const deleted = (await stack.execute(DeleteGenerationDocument, { id: accepted.generation.id })).data!.deleteGeneration;
    expect(deleted).toEqual({ __typename: 'DeleteGenerationSuccess', deletedId: accepted.generation.id });
    expect(await listed()).toEqual([]);
    expect((await fetch(video.url)).status).toBe(404);
  });
});
