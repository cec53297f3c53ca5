/**
 * The baselines of `npm run bench`, as a plain `node:http` server in its own process (so its CPU
 * and memory are its own, like the server under test). DATABASE_URL and PUBLIC_BASE_URL come from
 * the environment; it prints one JSON line `{"listening": url}` once bound to 127.0.0.1.
 *
 *   GET  /generation?id=<raw id>  the API-key lookup and the generation lookup with Prisma, as JSON
 *   GET  /page?first=<n>          the API-key lookup and one hand-written SQL statement for the page
 *   POST /extend                  one INSERT of a QUEUED generation row through pg
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { authenticate } from '../../src/auth/api-keys.ts';
import { createDb } from '../../src/db/client.ts';

const databaseUrl = process.env.DATABASE_URL!;
const publicBaseUrl = process.env.PUBLIC_BASE_URL ?? 'http://127.0.0.1';
const db = createDb(databaseUrl);
const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 });

const globalId = (id: string) => Buffer.from(`Generation:${id}`).toString('base64');
const send = (res: ServerResponse, status: number, body: unknown) => {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
};
const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
};

const PAGE_SQL = `
  SELECT g.id, g."sourceId", v.id AS "videoId",
         (SELECT count(*)::int FROM "Generation" e WHERE e."sourceId" = g.id) AS extensions,
         (SELECT count(*)::int FROM "Generation" t WHERE t."apiKeyId" = $1) AS total
    FROM "Generation" g LEFT JOIN "Video" v ON v."generationId" = g.id
   WHERE g."apiKeyId" = $1
   ORDER BY g.id DESC
   LIMIT $2`;

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://baseline');
  const key = req.headers['x-api-key'];
  if (url.pathname === '/generation') {
    const apiKey = await authenticate(db, typeof key === 'string' ? key : null);
    if (!apiKey) return send(res, 401, { error: 'unauthenticated' });
    // The server's lookup: findUnique by id with the key as a further filter.
    const g = await db.generation.findUnique({
      where: { id: url.searchParams.get('id') ?? '', apiKeyId: apiKey.id },
      select: { id: true, status: true, prompt: true, duration: true, quality: true, createdAt: true },
    });
    return send(res, 200, { data: { generation: g && { ...g, id: globalId(g.id) } } });
  }
  if (url.pathname === '/page') {
    const hash = createHash('sha256').update(typeof key === 'string' ? key : '').digest('hex');
    const keyRow = await pool.query<{ id: string }>('SELECT id FROM "ApiKey" WHERE "keyHash" = $1 AND "revokedAt" IS NULL', [hash]);
    const apiKeyId = keyRow.rows[0]?.id;
    if (!apiKeyId) return send(res, 401, { error: 'unauthenticated' });
    const first = Number(url.searchParams.get('first') ?? 100);
    const { rows } = await pool.query<{ id: string; sourceId: string | null; videoId: string | null; extensions: number; total: number }>(PAGE_SQL, [apiKeyId, first]);
    return send(res, 200, {
      data: {
        generations: {
          totalCount: rows[0]?.total ?? 0,
          edges: rows.map((row) => ({
            node: {
              id: globalId(row.id),
              source: row.sourceId ? { id: globalId(row.sourceId) } : null,
              video: row.videoId ? { url: `${publicBaseUrl}/videos/${row.videoId}.mp4` } : null,
              extensions: { totalCount: row.extensions },
            },
          })),
        },
      },
    });
  }
  if (url.pathname === '/extend' && req.method === 'POST') {
    const input = (JSON.parse(await readBody(req)) as { variables: { input: { videoUrl: string; prompt: string; quality: string } } }).variables.input;
    const apiKeyId = String(req.headers['x-key-id'] ?? '');
    const id = uuidv7();
    await pool.query(
      `INSERT INTO "Generation" (id, "apiKeyId", prompt, duration, quality, "motionMode", "sourceVideoUrl", "paramsHash", "plannedVideoId", "updatedAt")
       VALUES ($1, $2, $3, 5, $4::"VideoQuality", 'NORMAL', $5, $6, $7, now())`,
      [id, apiKeyId, input.prompt, input.quality, input.videoUrl, createHash('sha256').update(JSON.stringify(input)).digest('hex'), randomBytes(16).toString('base64url')],
    );
    return send(res, 200, { data: { extendVideo: { __typename: 'ExtendVideoSuccess', generation: { id: globalId(id), status: 'QUEUED' } } } });
  }
  send(res, 404, { error: 'not found' });
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => send(res, 500, { error: String(error) }));
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.all([db.$disconnect(), pool.end()]).then(() => process.exit(0));
});
