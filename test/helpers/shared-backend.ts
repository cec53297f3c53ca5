import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { createDb, type Db } from '../../src/db/client.ts';
import { startSimulator, type SimulatorHandle } from '../../src/upstream/simulator/index.ts';
import { createFreshDatabase, killAllChildServers } from './child-server.ts';
import { startRedis, stopAllRedis, type RedisServer } from './redis.ts';

/**
 * What several server processes share, as when deployed side by side: a fake Segmind, a
 * redis-server of the test's own, a fresh database and a data directory. `env` starts a child
 * server on them; `close` stops every child server, the Redis, the fake and removes the files.
 */
export interface SharedBackend {
  fake: SimulatorHandle;
  redis: RedisServer;
  db: Db;
  /** A new API key; the database exists once a server has started on it (the first start migrates it). */
  newKey(): Promise<string>;
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startSharedBackend(name: string, fakeTimings: { queueMs: number; processingMs: number }): Promise<SharedBackend> {
  const segmindKey = `sk-${name}-${randomBytes(12).toString('hex')}`;
  const fake = await startSimulator({ apiKey: segmindKey, mediaDir: join(tmpdir(), 'extendql-test-media'), ...fakeTimings });
  const redis = await startRedis();
  // As root, the embedded tools run as `postgres`, which must be able to enter the directory.
  const dataDir = await mkdtemp(join(tmpdir(), `extendql-${name}-`));
  await chmod(dataDir, 0o755);
  const env = {
    DATABASE_URL: await createFreshDatabase(),
    REDIS_URL: redis.url,
    SEGMIND_API_KEY: segmindKey,
    SEGMIND_BASE_URL: fake.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    POLL_INTERVAL_MS: '100',
    POLL_MAX_INTERVAL_MS: '300',
    LOG_LEVEL: 'info',
  };
  const db = createDb(env.DATABASE_URL, { max: 2 });
  return {
    fake,
    redis,
    db,
    newKey: async () => (await createApiKey(db, name)).key,
    env,
    async close() {
      await killAllChildServers();
      await stopAllRedis();
      await db.$disconnect();
      await fake.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
