import type pg from 'pg';
import { prismaTypes, timestampParam } from '../db/sql.ts';
import { InsufficientCreditsError, RateLimitedError } from '../errors.ts';
import { ACTIVE_STATUSES } from './lifecycle.ts';
import { estimatedCostUsd, type Quality } from './rules.ts';

export interface KeyLimits {
  /** Generations one key may start per rolling minute. */
  perMinute: number;
  /** Generations one key may have QUEUED or RUNNING at once. */
  concurrent: number;
  /** Estimated USD one key may spend per UTC day; null for no budget. */
  dailyBudgetUsd: number | null;
}

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

type UsageGroups = { quality: Quality; duration: 5 | 8; billable: boolean; count: number }[];

interface LimitsRow {
  limiting: Date | null;
  inProgress: number;
  usage: UsageGroups;
}

export interface KeyUsage {
  /** Generations started (deleted ones included), whatever became of them. */
  generationsStarted: number;
  /** Estimated USD of those that may have been billed: what the daily budget counts. */
  estimatedUsd: number;
}

function usageFrom(groups: UsageGroups): KeyUsage {
  let generationsStarted = 0;
  let estimatedUsd = 0;
  for (const group of groups) {
    generationsStarted += group.count;
    if (group.billable) estimatedUsd += group.count * estimatedCostUsd({ quality: group.quality, duration: group.duration });
  }
  return { generationsStarted, estimatedUsd };
}

/** The start of the UTC day `now` falls in: the daily budget's period. */
export const utcDayStart = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));

/** A key's usage since the start of the UTC day, counted as the daily budget counts it. */
export async function keyUsageToday(pool: pg.Pool, apiKeyId: string, now = new Date()): Promise<KeyUsage> {
  const { rows } = await pool.query<{ usage: UsageGroups }>({
    text: `SELECT ${usageSince('$2')} AS usage`,
    values: [apiKeyId, timestampParam(utcDayStart(now))],
  });
  return usageFrom(rows[0]!.usage);
}

/**
 * Checks a key's limits inside the transaction that will record its new generation (`client` is
 * that transaction's connection). The caller holds a per-key advisory lock, so concurrent requests
 * of one key are counted one at a time, across every server process.
 */
export async function enforceKeyLimits(client: pg.ClientBase, apiKeyId: string, costUsd: number, limits: KeyLimits, now = new Date()): Promise<void> {
  const windowStart = new Date(now.getTime() - 60_000);
  const dayStart = limits.dailyBudgetUsd === null ? null : utcDayStart(now);
  const { rows } = await client.query<LimitsRow>({
    // Named: prepared once per connection (see src/db/sql.ts).
    name: 'extendql_key_limits',
    text: LIMITS_SQL,
    values: [apiKeyId, timestampParam(windowStart), limits.perMinute - 1, limits.concurrent, dayStart && timestampParam(dayStart)],
    types: prismaTypes,
  });
  const { limiting, inProgress, usage } = rows[0]!;

  if (limiting) {
    const retryAfter = Math.ceil((limiting.getTime() + 60_000 - now.getTime()) / 1000);
    throw new RateLimitedError('REQUESTS_PER_MINUTE', limits.perMinute, Math.max(1, retryAfter));
  }

  if (inProgress >= limits.concurrent) throw new RateLimitedError('CONCURRENT_GENERATIONS', limits.concurrent, 30);

  if (limits.dailyBudgetUsd !== null) {
    const left = Math.max(0, limits.dailyBudgetUsd - usageFrom(usage).estimatedUsd);
    if (costUsd > left + 1e-9) throw new InsufficientCreditsError(costUsd, left, 'DAILY_BUDGET');
  }
}
