/**
 * Open subscriptions per API key in this process, whatever the transport (SSE or WebSocket), so
 * that one key cannot hold an unbounded number of streams (each holds a socket, a listener and,
 * with Redis, a channel).
 */
export class SubscriptionSlots {
  private readonly open = new Map<string, number>();

  readonly maxPerKey: number;
  constructor(maxPerKey: number) {
    this.maxPerKey = maxPerKey;
  }

  /** Takes a slot for `keyId`: its release function (idempotent), or null when the key holds `maxPerKey` already. */
  take(keyId: string): (() => void) | null {
    const held = this.open.get(keyId) ?? 0;
    if (held >= this.maxPerKey) return null;
    this.open.set(keyId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(keyId) ?? 1) - 1;
      if (left > 0) this.open.set(keyId, left);
      else this.open.delete(keyId);
    };
  }

  /** Slots `keyId` holds now. */
  held(keyId: string): number {
    return this.open.get(keyId) ?? 0;
  }
}

/**
 * `source`, releasing the slot once when the stream ends in any way: done, failed, or returned by
 * the consumer, even before its first item (a generator that never started runs no `finally`).
 */
export function holdingSlot<T>(source: AsyncIterator<T>, release: () => void): AsyncIterableIterator<T> {
  return {
    async next() {
      try {
        const result = await source.next();
        if (result.done) release();
        return result;
      } catch (error) {
        release();
        throw error;
      }
    },
    async return(value?: unknown) {
      release();
      return (await source.return?.(value)) ?? { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      release();
      if (source.throw) return source.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
