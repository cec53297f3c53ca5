import type pg from 'pg';
import type { Generation, Video } from '../generated/prisma/client.ts';
import { GENERATION_FIELDS } from './generations.ts';
import { namesNothing, prismaTypes, statementNamer } from './sql.ts';

// A key's history page in one statement, for the shapes that clients ask for (the studio's grid,
// the CLI's history, a dashboard): the page's columns, its source and video (one level, columns
// only) and how many generations extend each one. Prisma planned the same page as three queries,
// compiled on every request (BENCHMARKS.md, scenario 2). Any other shape, or a backwards page,
// returns null and the caller asks Prisma. test/history-page.test.ts holds the results to Prisma's.

const VIDEO_FIELDS: Record<keyof Video, true> = {
  id: true, generationId: true, storageKey: true, contentType: true, byteSize: true, width: true, height: true,
  durationSeconds: true, sha256: true, createdAt: true,
};

/** What Pothos plans for a page of `generations` (select mode), as its connection hands it over. */
export interface PageQuery {
  take?: number;
  skip?: number;
  cursor?: { id?: string };
  select?: object | null;
  include?: object | null;
}

/** The page's columns, split by where they come from; null when the shape is not one handled here. */
interface PagePlan {
  columns: string[];
  source: string[] | null;
  video: string[] | null;
  extensions: boolean;
}

/** The columns of a `{ select: { column: true } }` relation selection, when that is all it is. */
function columnsOf(selection: unknown, fields: Record<string, true>): string[] | null {
  const select = (selection as { select?: unknown } | null)?.select;
  if (!select || typeof select !== 'object' || Object.keys(selection as object).length !== 1) return null;
  const columns = Object.entries(select);
  if (columns.length === 0) return null;
  return columns.every(([name, value]) => value === true && Object.hasOwn(fields, name)) ? canonical(columns.map(([name]) => name), fields) : null;
}

/** Columns in the model's order, once each: one shape, one statement text, whatever the query's field order. */
function canonical(columns: string[], fields: Record<string, true>): string[] {
  const wanted = new Set(columns);
  return Object.keys(fields).filter((field) => wanted.has(field));
}

function planOf(query: PageQuery): PagePlan | null {
  if (query.include || !(query.take && query.take > 0) || (query.skip !== 0 && query.skip !== 1)) return null;
  if (query.cursor != null && (typeof query.cursor.id !== 'string' || Object.keys(query.cursor).length !== 1)) return null;
  const plan: PagePlan = { columns: ['id'], source: null, video: null, extensions: false };
  for (const [name, value] of Object.entries(query.select ?? {})) {
    if (value === true && Object.hasOwn(GENERATION_FIELDS, name)) plan.columns.push(name);
    else if (name === 'source' && (plan.source = columnsOf(value, GENERATION_FIELDS))) continue;
    else if (name === 'video' && (plan.video = columnsOf(value, VIDEO_FIELDS))) continue;
    else if (name === '_count' && JSON.stringify(value) === '{"select":{"extensions":true}}') plan.extensions = true;
    else return null;
  }
  plan.columns = canonical(plan.columns, GENERATION_FIELDS);
  return plan;
}

/** The statement for a plan: the same text for the same shape, so it is prepared once per connection. */
function statementOf(plan: PagePlan, filtered: boolean, cursor: boolean): string {
  const out = plan.columns.map((c) => `g."${c}"`);
  if (plan.source) out.push(`s."id" AS "source.", ${plan.source.map((c) => `s."${c}" AS "source.${c}"`).join(', ')}`);
  if (plan.video) out.push(`v."id" AS "video.", ${plan.video.map((c) => `v."${c}" AS "video.${c}"`).join(', ')}`);
  if (plan.extensions) out.push(`(SELECT count(*) FROM "Generation" e WHERE e."sourceId" = g."id")::int AS "_count.extensions"`);
  // As Prisma reads a cursor: the rows from the cursor's own row on (none when it is not there).
  const where = ['g."apiKeyId" = $1', filtered ? 'g."status" = $4::"GenerationStatus"' : null, cursor ? `g."id" <= (SELECT "id" FROM "Generation" WHERE "id" = $${filtered ? 5 : 4})` : null];
  return `SELECT ${out.join(', ')} FROM "Generation" g
    ${plan.source ? 'LEFT JOIN "Generation" s ON s."id" = g."sourceId"' : ''}
    ${plan.video ? 'LEFT JOIN "Video" v ON v."generationId" = g."id"' : ''}
    WHERE ${where.filter(Boolean).join(' AND ')} ORDER BY g."id" DESC LIMIT $2 OFFSET $3`;
}

/** Folds "source.x" / "video.x" / "_count.extensions" columns into Prisma's nested shape. */
function nest(row: Record<string, unknown>, plan: PagePlan): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const nested: Record<string, Record<string, unknown> | null> = {};
  if (plan.source) nested.source = row['source.'] === null ? null : {};
  if (plan.video) nested.video = row['video.'] === null ? null : {};
  for (const [column, value] of Object.entries(row)) {
    const dot = column.indexOf('.');
    if (dot < 0) out[column] = value;
    else if (column === '_count.extensions') out._count = { extensions: value };
    else if (dot < column.length - 1) {
      const target = nested[column.slice(0, dot)];
      if (target) target[column.slice(dot + 1)] = value;
    }
  }
  return Object.assign(out, nested);
}

/** Up to 32 page shapes are prepared, each once it has been asked for three times. */
const statementName = statementNamer('extendql_page', 32, 3);

/**
 * A page of the key's generations, newest first, shaped as `db.generation.findMany({ ...query,
 * where: { apiKeyId, status }, orderBy: { id: 'desc' } })` would return it; null for a shape this
 * does not handle.
 */
export async function readHistoryPage(pool: pg.Pool, filter: { apiKeyId: string; status: string | null }, query: PageQuery): Promise<Partial<Generation>[] | null> {
  const plan = planOf(query);
  if (!plan) return null;
  const values: unknown[] = [filter.apiKeyId, query.take, query.skip];
  if (filter.status) values.push(filter.status);
  const cursor = query.cursor?.id;
  // A cursor no row can have (a NUL, say, which PostgreSQL refuses in text) is not there: as with
  // any cursor that is gone, the page is empty.
  if (cursor !== undefined && namesNothing(cursor)) return [];
  if (cursor !== undefined) values.push(cursor);
  const text = statementOf(plan, filter.status !== null, cursor !== undefined);
  const { rows } = await pool.query({ name: statementName(text), text, values, types: prismaTypes });
  return rows.map((row: Record<string, unknown>) => nest(row, plan) as Partial<Generation>);
}

const COUNT = 'SELECT count(*)::int AS "count" FROM "Generation" WHERE "apiKeyId" = $1';
const COUNT_BY_STATUS = `${COUNT} AND "status" = $2::"GenerationStatus"`;

/** How many generations the key has (with that status): the page's totalCount. */
export async function countGenerations(pool: pg.Pool, filter: { apiKeyId: string; status: string | null }): Promise<number> {
  const { rows } = filter.status
    ? await pool.query<{ count: number }>({ name: 'extendql_history_count_status', text: COUNT_BY_STATUS, values: [filter.apiKeyId, filter.status] })
    : await pool.query<{ count: number }>({ name: 'extendql_history_count', text: COUNT, values: [filter.apiKeyId] });
  return rows[0]!.count;
}
