// A database outage seen from the edge: a real server process on a PostgreSQL of the test's own,
// whose postmaster is killed with SIGKILL and started again.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/auth/api-keys.ts';
import { createDb } from '../src/db/client.ts';
import { killAllChildServers, startChildServer, type ChildServer } from './helpers/child-server.ts';
import { startKillablePostgres, type KillablePostgres } from './helpers/killable-postgres.ts';

let postgres: KillablePostgres;
let server: ChildServer;
let dataDir: string;
/** Used before the outage (so the server remembers it), and never used before it. */
let knownKey: string;
let freshKey: string;
/** A key whose extendVideo the test holds inside its transaction, by taking the key's advisory lock first. */
let heldKey: { id: string; key: string };
/** A key with finished generations the test deletes while it holds their rows locked. */
let deletingKey: { id: string; key: string };
/** The server's pool size (src/db/client.ts): as many deletions as it holds connections. */
const POOL_MAX = 20;

beforeAll(async () => {
  postgres = await startKillablePostgres();
  dataDir = await mkdtemp(join(tmpdir(), 'extendql-outage-'));
  server = await startChildServer({
    DATABASE_URL: postgres.url,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
    SIMULATOR_QUEUE_MS: '50',
    SIMULATOR_PROCESSING_MS: '100',
  });
  const db = createDb(postgres.url, { max: 1 });
  try {
    knownKey = (await createApiKey(db, 'known')).key;
    freshKey = (await createApiKey(db, 'fresh')).key;
    heldKey = await createApiKey(db, 'held');
    deletingKey = await createApiKey(db, 'deleting');
    await db.generation.createMany({
      data: Array.from({ length: POOL_MAX }, (_, i) => ({
        id: `deleted-in-outage-${i}`,
        apiKeyId: deletingKey.id,
        status: 'SUCCEEDED' as const,
        prompt: 'finished',
        duration: 5,
        quality: 'Q540P' as const,
        motionMode: 'NORMAL' as const,
        sourceVideoUrl: 'https://videos.example/a.mp4',
        paramsHash: `hash-${i}`,
        plannedVideoId: `planned-deleted-in-outage-${i}`,
        completedAt: new Date(),
      })),
    });
  } finally {
    await db.$disconnect();
  }
}, 120_000);

afterAll(async () => {
  await killAllChildServers();
  await postgres?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const QUERY = '{ generations(first: 1) { totalCount } }';
const EXTEND = 'mutation { extendVideo(input: { videoUrl: "https://videos.example/a.mp4", prompt: "during an outage" }) { __typename } }';

async function graphql(query: string, key: string) {
  const response = await fetch(server.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query }) });
  const text = await response.text();
  return { status: response.status, retryAfter: response.headers.get('retry-after'), text, body: JSON.parse(text) as { data?: unknown; errors?: { extensions?: { code?: string } }[] } };
}

async function ready() {
  const response = await fetch(`${server.url}/ready`);
  return { status: response.status, text: await response.text() };
}

/** Nothing that tells a stranger where the database is or what talks to it. */
function expectNoInternals(text: string) {
  expect(text).not.toContain(String(postgres.port));
  expect(text).not.toMatch(/127\.0\.0\.1|localhost|prisma|ECONNREFUSED|postgres|invocation|\bat .*\.[tj]s:\d+/i);
}

describe('PostgreSQL goes away and comes back', () => {
  it('answers 503 + Retry-After + SERVICE_UNAVAILABLE and a /ready naming the database, stays up, and recovers', async () => {
    expect((await graphql(QUERY, knownKey)).body).toEqual({ data: { generations: { totalCount: 0 } } });
    expect(await ready()).toEqual({ status: 200, text: JSON.stringify({ database: 'ok', queue: 'ok', upstream: 'closed' }) });

    await postgres.kill();

    // A remembered key reaches the resolver, a fresh one fails while it is looked up; a mutation too.
    for (const [query, key] of [
      [QUERY, knownKey],
      [QUERY, freshKey],
      [EXTEND, knownKey],
      // A page, which goes to pg directly in one statement.
      ['{ generations(first: 5) { edges { node { id source { id } video { url } extensions { totalCount } } } } }', knownKey],
    ] as const) {
      const reply = await graphql(query, key);
      expect(reply.status, reply.text).toBe(503);
      expect(reply.retryAfter).toMatch(/^\d+$/);
      expect(reply.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
      expectNoInternals(reply.text);
    }

    // generation(id:) reads with pg directly too; it may be null, so its answer carries data (200),
    // still with the retryable code and Retry-After.
    const one = await graphql('{ generation(id: "made-up") { id } }', knownKey);
    expect(one.status, one.text).toBe(200);
    expect(one.retryAfter).toMatch(/^\d+$/);
    expect(one.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    expectNoInternals(one.text);

    const down = await ready();
    expect(down.status).toBe(503);
    expect(JSON.parse(down.text)).toEqual({ database: 'unavailable', queue: 'unavailable', upstream: 'closed' });
    expectNoInternals(down.text);

    // The detail went to the log, as a warning without a stack.
    await expect.poll(() => server.logs().some((line) => line.msg === 'readiness check failed' && line.dependency === 'database')).toBe(true);
    const lines = server.logs();
    expect(lines.some((line) => line.msg === 'request failed: the database or job queue is unavailable')).toBe(true);
    // (yoga's error log puts a stack in the message.)
    expect(lines.filter((line) => /\n\s+at /.test(String(line.msg)))).toEqual([]);
    // The job engine's polls fail too while the database is away: warnings without a stack, not errors.
    await expect.poll(() => server.logs().some((line) => line.msg === 'job engine cannot reach the database; retrying')).toBe(true);
    expect(server.logs().filter((line) => line.msg === 'job engine error')).toEqual([]);

    await sleep(1000);
    expect(server.output()).not.toMatch(/JavaScript heap|Unhandled|uncaught/i);
    expect(await Promise.race([server.exited.then(() => 'exited'), sleep(10).then(() => 'running')])).toBe('running');

    await postgres.restart();
    for (let attempt = 0; (await ready()).status !== 200; attempt++) {
      expect(attempt, 'still not ready 30 s after PostgreSQL came back').toBeLessThan(300);
      await sleep(100);
    }
    expect(await ready()).toEqual({ status: 200, text: JSON.stringify({ database: 'ok', queue: 'ok', upstream: 'closed' }) });
    expect((await graphql(QUERY, freshKey)).body).toEqual({ data: { generations: { totalCount: 0 } } });
    expect((await graphql(EXTEND, knownKey)).body).toEqual({ data: { extendVideo: { __typename: 'ExtendVideoSuccess' } } });
  });

  it('stays up when PostgreSQL dies under a request in the middle of its transaction, and answers it 503', async () => {
    // The test takes the key's advisory lock first, so the server's extendVideo waits inside its
    // transaction, on a checked-out connection, until the database dies under it.
    const holder = new pg.Client({ connectionString: postgres.url });
    holder.on('error', () => {});
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [heldKey.id]);
    const pending = graphql(EXTEND, heldKey.key);
    await expect.poll(async () => (await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n, { timeout: 15_000 }).toBe(1);

    await postgres.kill();
    const reply = await pending;
    expect(reply.status, reply.text).toBe(503);
    expect(reply.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    await sleep(1000);
    expect(server.output()).not.toMatch(/Unhandled|uncaught|Error: Connection terminated/i);
    expect(await Promise.race([server.exited.then(() => 'exited'), sleep(10).then(() => 'running')])).toBe('running');

    await postgres.restart();
    for (let attempt = 0; (await ready()).status !== 200; attempt++) {
      expect(attempt, 'still not ready 30 s after PostgreSQL came back').toBeLessThan(300);
      await sleep(100);
    }
    expect((await graphql(EXTEND, heldKey.key)).body).toEqual({ data: { extendVideo: { __typename: 'ExtendVideoSuccess' } } });
  });

  it('gets its pool back after PostgreSQL dies under Prisma transactions holding every connection', async () => {
    // The test locks the generations' rows, so each deletion waits inside its Prisma transaction,
    // together holding every connection of the server's pool, when the database dies under them.
    const holder = new pg.Client({ connectionString: postgres.url });
    holder.on('error', () => {});
    await holder.connect();
    await holder.query('BEGIN');
    const { rows } = await holder.query<{ id: string }>('SELECT id FROM "Generation" WHERE "apiKeyId" = $1 FOR UPDATE', [deletingKey.id]);
    expect(rows).toHaveLength(POOL_MAX);
    const deletions = rows.map(({ id }) => graphql(`mutation { deleteGeneration(id: "${id}") { __typename } }`, deletingKey.key));
    // Row locks waited for, one per deletion (pg_locks, unlike pg_stat_activity, is not frozen for the transaction).
    const waiting = "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted";
    await expect.poll(async () => (await holder.query(waiting)).rows[0].n, { timeout: 20_000 }).toBe(POOL_MAX);

    await postgres.kill();
    for (const reply of await Promise.all(deletions)) {
      expect(reply.status, reply.text).toBe(503);
      expect(reply.body.errors?.map((error) => error.extensions?.code)).toEqual(['SERVICE_UNAVAILABLE']);
    }

    await postgres.restart();
    // By the clock: while the pool is stuck, each /ready waits out the pool's 10 s checkout timeout.
    const deadline = Date.now() + 30_000;
    while ((await ready()).status !== 200) {
      expect(Date.now(), 'still not ready 30 s after PostgreSQL came back').toBeLessThan(deadline);
      await sleep(100);
    }
    expect((await graphql(QUERY, deletingKey.key)).body).toEqual({ data: { generations: { totalCount: POOL_MAX } } });
    expect((await graphql(`mutation { deleteGeneration(id: "${rows[0]!.id}") { __typename } }`, deletingKey.key)).body).toEqual({
      data: { deleteGeneration: { __typename: 'DeleteGenerationSuccess' } },
    });
  }, 90_000);
});
