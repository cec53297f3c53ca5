/**
 * A circuit breaker for one upstream: after `threshold` consecutive failures it opens and calls
 * are refused locally for `cooldownMs`; then one trial call decides whether it closes again.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private trialInFlight = false;

  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  constructor(
    threshold: number,
    cooldownMs: number,
    now: () => number = Date.now,
  ) {
    this.threshold = threshold;
    this.cooldownMs = cooldownMs;
    this.now = now;
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.openedAt === null) return 'closed';
    return this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** When a refused call may try again, or null when a call may go ahead now. */
  refuse(): Date | null {
    const state = this.state;
    if (state === 'closed') return null;
    if (state === 'half-open' && !this.trialInFlight) {
      this.trialInFlight = true;
      return null;
    }
    return new Date((this.openedAt ?? this.now()) + this.cooldownMs);
  }

  succeeded(): void {
    this.failures = 0;
    this.openedAt = null;
    this.trialInFlight = false;
  }

  failed(): void {
    this.failures += 1;
    if (this.trialInFlight || this.failures >= this.threshold) this.openedAt = this.now();
    this.trialInFlight = false;
  }
}
