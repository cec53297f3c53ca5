import type pg from 'pg';
import { readKeyLimits, readUsageSince, type UsageGroups } from '../db/key-limits.ts';
import { InsufficientCreditsError, RateLimitedError } from '../errors.ts';
import { estimatedCostUsd } from './rules.ts';

export interface KeyLimits {
  /** Generations one key may start per rolling minute. */
  perMinute: number;
  /** Generations one key may have QUEUED or RUNNING at once. */
  concurrent: number;
  /** Estimated USD one key may spend per UTC day; null for no budget. */
  dailyBudgetUsd: number | null;
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
  return usageFrom(await readUsageSince(pool, apiKeyId, utcDayStart(now)));
}

/**
 * Checks a key's limits inside the transaction that will record its new generation (`client` is
 * that transaction's connection). The caller holds a per-key advisory lock, so concurrent requests
 * of one key are counted one at a time, across every server process.
 */
export async function enforceKeyLimits(client: pg.ClientBase, apiKeyId: string, costUsd: number, limits: KeyLimits, now = new Date()): Promise<void> {
  const windowStart = new Date(now.getTime() - 60_000);
  const dayStart = limits.dailyBudgetUsd === null ? null : utcDayStart(now);
  const { limiting, inProgress, usage } = await readKeyLimits(client, apiKeyId, windowStart, limits.perMinute - 1, limits.concurrent, dayStart);

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
