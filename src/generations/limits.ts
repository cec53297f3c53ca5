import type { Prisma } from '../generated/prisma/client.js';
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
 * Checks a key's limits inside the transaction that will record its new generation. The caller
 * holds a per-key advisory lock, so concurrent requests of one key are counted one at a time,
 * across every server process.
 */
export async function enforceKeyLimits(tx: Prisma.TransactionClient, apiKeyId: string, costUsd: number, limits: KeyLimits, now = new Date()) {
  // The perMinute-th most recent generation inside the window, if there is one: one row at most.
  const windowStart = new Date(now.getTime() - 60_000);
  const [limiting] = await tx.generation.findMany({
    where: { apiKeyId, createdAt: { gt: windowStart } },
    select: { createdAt: true },
    orderBy: { createdAt: 'desc' },
    skip: limits.perMinute - 1,
    take: 1,
  });
  if (limiting) {
    const retryAfter = Math.ceil((limiting.createdAt.getTime() + 60_000 - now.getTime()) / 1000);
    throw new RateLimitedError('REQUESTS_PER_MINUTE', limits.perMinute, Math.max(1, retryAfter));
  }

  const inProgress = await tx.generation.count({ where: { apiKeyId, status: { in: ['QUEUED', 'RUNNING'] } } });
  if (inProgress >= limits.concurrent) throw new RateLimitedError('CONCURRENT_GENERATIONS', limits.concurrent, 30);

  if (limits.dailyBudgetUsd !== null) {
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    // Failed jobs are not billed upstream; everything else may have been.
    const groups = await tx.generation.groupBy({
      by: ['quality', 'duration'],
      where: { apiKeyId, createdAt: { gte: dayStart }, status: { not: 'FAILED' } },
      _count: { _all: true },
    });
    const spent = groups.reduce((sum, group) => sum + group._count._all * estimatedCostUsd({ quality: group.quality as Quality, duration: group.duration as 5 | 8 }), 0);
    const left = Math.max(0, limits.dailyBudgetUsd - spent);
    if (costUsd > left + 1e-9) throw new InsufficientCreditsError(costUsd, left, 'DAILY_BUDGET');
  }
}
