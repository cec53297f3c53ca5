/**
 * The client-side CPU of one lookup, by the way it reaches PostgreSQL: Prisma's `findFirst` (the
 * query compiler plans every call, then the client maps the row), Prisma's `findUnique` (which
 * batches the calls made in one tick into one query), Prisma's `$queryRaw`, and a
 * named `pg` statement. Runs in the bench process while the servers are idle, with 20 lookups in
 * flight, and answers in microseconds of this process's CPU per lookup. It is the floor under
 * scenarios 1 and 2: every Prisma read of the server and of scenario 1's baseline pays one of them.
 */
import pg from 'pg';
import { openDb } from '../../src/db/client.ts';

export interface QueryCost {
  prismaFindFirstUs: number;
  prismaFindUniqueUs: number;
  prismaQueryRawUs: number;
  pgNamedUs: number;
}

const IN_FLIGHT = 20;

async function cpuPerCall(calls: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 300; i++) await fn();
  const before = process.cpuUsage();
  let started = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (started++ < calls) await fn();
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}

export async function queryCost(databaseUrl: string, apiKeyId: string, generationId: string, calls = 5000): Promise<QueryCost> {
  const { db, pool, close } = openDb(databaseUrl, { max: IN_FLIGHT });
  try {
    const select = { id: true, status: true, prompt: true, duration: true, quality: true, createdAt: true } as const;
    const text = 'SELECT id, status::text, prompt, duration, quality::text, "createdAt" FROM "Generation" WHERE id = $1 AND "apiKeyId" = $2';
    const found = await db.generation.findFirst({ where: { id: generationId, apiKeyId }, select });
    if (!found) throw new Error('query cost: the generation to look up is missing');
    return {
      prismaFindFirstUs: await cpuPerCall(calls, () => db.generation.findFirst({ where: { id: generationId, apiKeyId }, select })),
      prismaFindUniqueUs: await cpuPerCall(calls, () => db.generation.findUnique({ where: { id: generationId, apiKeyId }, select })),
      prismaQueryRawUs: await cpuPerCall(calls, () => db.$queryRawUnsafe(text, generationId, apiKeyId)),
      pgNamedUs: await cpuPerCall(calls, () => pool.query({ name: 'bench_query_cost', text, values: [generationId, apiKeyId] } satisfies pg.QueryConfig)),
    };
  } finally {
    await close();
  }
}
