import { join } from 'node:path';
import type { Config } from '../config.ts';
import { LocalVideoStorage, type VideoStorage } from './storage.ts';

export interface ConfiguredStorage {
  storage: VideoStorage;
  /** Where videos go, for the startup log line. Never holds credentials. */
  description: { kind: 's3'; bucket: string; endpoint: string; prefix: string } | { kind: 'local'; dir: string };
  close(): void;
}

/**
 * S3-compatible object storage when S3_BUCKET is set, else files under storageDir. The AWS SDK is
 * loaded only then: it adds about 30 MB to every process that merely imports it.
 */
export async function createVideoStorage(config: Pick<Config, 's3' | 'dataDir' | 'storageDir'>): Promise<ConfiguredStorage> {
  const { s3 } = config;
  if (!s3) {
    return { storage: new LocalVideoStorage(config.storageDir), description: { kind: 'local', dir: config.storageDir }, close: () => {} };
  }
  const { S3VideoStorage } = await import('./s3.ts');
  const storage = new S3VideoStorage({
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
    prefix: s3.prefix,
    // Not under storageDir: with S3 nothing is kept on local disk but downloads in flight.
    tempDir: join(config.dataDir, 'tmp', 'videos'),
  });
  return {
    storage,
    // The origin only: an endpoint URL could carry user:password.
    description: { kind: 's3', bucket: s3.bucket, endpoint: s3.endpoint ? new URL(s3.endpoint).origin : `AWS S3 (${s3.region})`, prefix: s3.prefix },
    close: () => storage.close(),
  };
}
