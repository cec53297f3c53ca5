import type pg from 'pg';
import { prismaTypes, timestampParam } from '../db/sql.js';
import { InsufficientCreditsError, RateLimitedError } from '../errors.js';
import { estimatedCostUsd, type Quality } from './rules.js';

export interface KeyLimits {
  /** Generations one key may start per rolling minute. */
  perMinute: number;
  /** Generations one key may have QUEUED or RUNNING at once. */
  concurrent: number;
  /** Estimated USD one key may spend per UTC day; null for no budget. */
  dailyBudgetUsd: number | null;
}

/**
 * Everything the limits need, in one statement (one round trip):
 * - limiting: the perMinute-th most recent createdAt inside the window, if there is one;
 * - inProgress: QUEUED and RUNNING generations, counted up to the cap only (all the check needs);
 * - spent: today's generations by quality and duration, priced below by `estimatedCostUsd` so
 *   that the cost table lives in one place. Skipped (no rows) when $5 (the day's start) is null.
 * Failed jobs are not billed upstream; everything else may have been.
 */
const LIMITS_SQL = `
  SELECT
    (SELECT "createdAt" FROM "Generation"
      WHERE "apiKeyId" = $1 AND "createdAt" > $2::timestamp
      ORDER BY "createdAt" DESC OFFSET $3 LIMIT 1) AS limiting,
    (SELECT count(*)::int FROM (
      SELECT 1 FROM "Generation"
       WHERE "apiKeyId" = $1 AND "status" IN ('QUEUED', 'RUNNING')
       LIMIT $4) capped) AS "inProgress",
    (SELECT coalesce(json_agg(json_build_object('quality', quality, 'duration', duration, 'count', n)), '[]')
       FROM (SELECT quality, duration, count(*)::int AS n FROM "Generation"
              WHERE $5::timestamp IS NOT NULL AND "apiKeyId" = $1 AND "createdAt" >= $5::timestamp AND "status" <> 'FAILED'
              GROUP BY quality, duration) groups) AS spent`;

interface LimitsRow {
  limiting: Date | null;
  inProgress: number;
  spent: { quality: Quality; duration: 5 | 8; count: number }[];
}

/**
 * Checks a key's limits inside the transaction that will record its new generation (`client` is
 * that transaction's connection). The caller holds a per-key advisory lock, so concurrent requests
 * of one key are counted one at a time, across every server process.
 */
export async function enforceKeyLimits(client: pg.ClientBase, apiKeyId: string, costUsd: number, limits: KeyLimits, now = new Date()): Promise<void> {
  const windowStart = new Date(now.getTime() - 60_000);
  const dayStart = limits.dailyBudgetUsd === null ? null : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const { rows } = await client.query<LimitsRow>({
    // Named: prepared once per connection (see src/db/sql.ts).
    name: 'extendql_key_limits',
    text: LIMITS_SQL,
    values: [apiKeyId, timestampParam(windowStart), limits.perMinute - 1, limits.concurrent, dayStart && timestampParam(dayStart)],
    types: prismaTypes,
  });
  const { limiting, inProgress, spent } = rows[0]!;

  if (limiting) {
    const retryAfter = Math.ceil((limiting.getTime() + 60_000 - now.getTime()) / 1000);
    throw new RateLimitedError('REQUESTS_PER_MINUTE', limits.perMinute, Math.max(1, retryAfter));
  }

  if (inProgress >= limits.concurrent) throw new RateLimitedError('CONCURRENT_GENERATIONS', limits.concurrent, 30);

  if (limits.dailyBudgetUsd !== null) {
    const spentUsd = spent.reduce((sum, group) => sum + group.count * estimatedCostUsd({ quality: group.quality, duration: group.duration }), 0);
    const left = Math.max(0, limits.dailyBudgetUsd - spentUsd);
    if (costUsd > left + 1e-9) throw new InsufficientCreditsError(costUsd, left, 'DAILY_BUDGET');
  }
}
