import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** The part of s3rver 3.x this helper uses; the package ships no types. */
interface S3rverEvent {
  Records: { eventName: string; s3: { bucket: { name: string }; object: { key: string; size?: number } } }[];
}
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'event', listener: (event: S3rverEvent) => void): void;
}
type S3rverClass = new (options: { port: number; address: string; silent: boolean; directory: string }) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** s3rver knows only this access key id. It does not verify SigV4 signatures, so any secret passes. */
  accessKeyId: string;
  secretAccessKey: string;
  /** S3_* variables pointing the app at this server. */
  env: Record<string, string>;
  /** A plain SDK client, to look at the bucket without going through our code. */
  client: S3Client;
  /** Objects the server stored: `ObjectCreated:Put` for a single PUT, `ObjectCreated:Post` for a completed multipart upload. */
  created: { eventName: string; bucket: string; key: string }[];
  close(): Promise<void>;
}

/** Starts a real S3-protocol server (s3rver) on 127.0.0.1 with a fresh directory and one bucket. */
export async function startS3Server(bucket = 'extendql-test'): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'extendql-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const created: S3Server['created'] = [];
  server.on('event', (event) => {
    for (const record of event.Records) {
      if (record.eventName.startsWith('ObjectCreated:')) created.push({ eventName: record.eventName, bucket: record.s3.bucket.name, key: record.s3.object.key });
    }
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = 'S3RVER';
  const secretAccessKey = `s3-secret-${randomBytes(16).toString('hex')}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    client.destroy();
    await server.close();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    env: { S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey },
    client,
    created,
    async close() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
