import type { Logger } from '../logger.ts';

/**
 * Segmind's balance, read at most once per `ttlMs` so that accepting a request costs no upstream
 * call on the hot path. Local reservations keep a burst from spending the same dollars twice.
 */
export class CreditGauge {
  private balance: number | null = null;
  private readAt = 0;
  private reserved = 0;
  private refreshing: Promise<void> | null = null;

  private readonly read: () => Promise<number>;
  private readonly logger: Logger;
  private readonly ttlMs;
  constructor(
    read: () => Promise<number>,
    logger: Logger,
    ttlMs = 15_000,
  ) {
    this.read = read;
    this.logger = logger;
    this.ttlMs = ttlMs;
  }

  /** The spendable balance in USD, or null when it could not be read (upstream then decides). */
  async available(): Promise<number | null> {
    if (Date.now() - this.readAt > this.ttlMs) {
      const refresh = this.refresh();
      // Only the first read waits; afterwards a stale value is served while it refreshes.
      if (this.balance === null) await refresh;
    }
    return this.balance === null ? null : this.balance - this.reserved;
  }

  reserve(usd: number): void {
    this.reserved += usd;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.read()
      .then((balance) => {
        this.balance = balance;
        this.reserved = 0;
      })
      .catch((error: Error) => this.logger.warn({ err: error.message }, 'could not read the Segmind credit balance'))
      .finally(() => {
        this.readAt = Date.now();
        this.refreshing = null;
      });
    return this.refreshing;
  }
}
