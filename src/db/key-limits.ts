import type pg from 'pg';
import type { Quality } from '../generations/rules.ts';
import { ACTIVE_STATUSES } from '../generations/lifecycle.ts';
import { prismaTypes, timestampParam } from './sql.ts';

// The statements behind the per-key limits (src/generations/limits.ts), run for every
// extendVideo inside its transaction: one round trip, a named statement.

/**
 * Generations a key started since `since` (a parameter placeholder), deleted ones included: a
 * deleted generation leaves a DeletedGeneration row behind, so deleting work does not give back
 * its budget or its place in the rate limit.
 */
const startedSince = (since: string) => `
  SELECT "createdAt", quality, duration, "status" <> 'FAILED' AS billable FROM "Generation" WHERE "apiKeyId" = $1 AND "createdAt" >= ${since}
  UNION ALL
  SELECT "createdAt", quality, duration, billable FROM "DeletedGeneration" WHERE "apiKeyId" = $1 AND "createdAt" >= ${since}`;

/**
 * The day's generations by quality, duration and whether they may have been billed (failed jobs
 * are not billed upstream; everything else may have been), priced by `usageFrom` with
 * `estimatedCostUsd` so that the cost table lives in one place. No rows when `since` is null.
 */
const usageSince = (since: string) => `
  (SELECT coalesce(json_agg(json_build_object('quality', quality, 'duration', duration, 'billable', billable, 'count', n)), '[]')
     FROM (SELECT quality, duration, billable, count(*)::int AS n
             FROM (${startedSince(`${since}::timestamp`)}) started
            WHERE ${since}::timestamp IS NOT NULL
            GROUP BY quality, duration, billable) groups)`;

/**
 * Everything the limits need, in one statement (one round trip):
 * - limiting: the perMinute-th most recent start inside the window, if there is one;
 * - inProgress: QUEUED and RUNNING generations, counted up to the cap only (all the check needs);
 * - usage: today's generations (see usageSince). Skipped when $5 (the day's start) is null.
 */
const LIMITS_SQL = `
  SELECT
    (SELECT "createdAt" FROM (${startedSince('$2::timestamp')}) started
      WHERE "createdAt" > $2::timestamp
      ORDER BY "createdAt" DESC OFFSET $3 LIMIT 1) AS limiting,
    (SELECT count(*)::int FROM (
      SELECT 1 FROM "Generation"
       WHERE "apiKeyId" = $1 AND "status" IN (${ACTIVE_STATUSES.map((status) => `'${status}'`).join(', ')})
       LIMIT $4) capped) AS "inProgress",
    ${usageSince('$5')} AS usage`;

export type UsageGroups = { quality: Quality; duration: 5 | 8; billable: boolean; count: number }[];

export interface LimitsRow {
  limiting: Date | null;
  inProgress: number;
  usage: UsageGroups;
}

/**
 * What the limits of `apiKeyId` need to know, read on the connection of the transaction that
 * will record its new generation: the start that limits the rolling minute (the `offset`-th most
 * recent after `windowStart`), QUEUED and RUNNING generations counted up to `cap`, and the usage
 * since `dayStart` (none when it is null).
 */
export async function readKeyLimits(client: pg.ClientBase, apiKeyId: string, windowStart: Date, offset: number, cap: number, dayStart: Date | null): Promise<LimitsRow> {
  const { rows } = await client.query<LimitsRow>({
    // Named: prepared once per connection (see src/db/sql.ts).
    name: 'extendql_key_limits',
    text: LIMITS_SQL,
    values: [apiKeyId, timestampParam(windowStart), offset, cap, dayStart && timestampParam(dayStart)],
    types: prismaTypes,
  });
  return rows[0]!;
}

/** A key's generations since `since`, grouped as `UsageGroups`. */
export async function readUsageSince(pool: pg.Pool, apiKeyId: string, since: Date): Promise<UsageGroups> {
  const { rows } = await pool.query<{ usage: UsageGroups }>({ text: `SELECT ${usageSince('$2')} AS usage`, values: [apiKeyId, timestampParam(since)] });
  return rows[0]!.usage;
}
