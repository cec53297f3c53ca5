import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/** What createPubSub needs of an event target. */
export type PubSubEventTarget = ReturnType<typeof createRedisEventTarget>;
type Listener = Parameters<PubSubEventTarget['addEventListener']>[1];

export interface RedisEvents {
  /** Carries subscription events between processes; wakes every local listener after an outage. */
  eventTarget: PubSubEventTarget;
  /** Whether both connections are up (for /ready). */
  available(): boolean;
  stop(): Promise<void>;
}

/** Reconnect after 100 ms, then doubling up to 2 s, for as long as it takes. */
const retryStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);

/**
 * Subscription events over Redis (REDIS_URL). Events are best-effort: the generation's row is the
 * truth. So an outage must not crash anything or fail a step or a mutation: publishing while the
 * link is down is dropped (and logged once), both connections reconnect forever with backoff, and
 * once the subscriber connection is back every open subscription in this process is woken to
 * re-read its row, so a generation that ended during the outage still reaches its subscribers.
 */
export async function startRedisEvents(url: string, logger: Logger): Promise<RedisEvents> {
  // No offline queue for publishing: an event that cannot go now is dropped at once, not held.
  const publisher = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy });
  // Subscribing waits for the link instead (and ioredis subscribes again after a reconnect).
  const subscriber = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy });
  let stopping = false;
  const stop = async () => {
    stopping = true;
    publisher.disconnect();
    subscriber.disconnect();
  };
  const listeners = new Map<string, Set<Listener>>();
  const resubscribeAndWake = async () => {
    const topics = [...listeners.keys()];
    // Subscribed (again) before the wake, so no change after the re-read can be missed.
    if (topics.length) await subscriber.subscribe(...topics);
    for (const [topic, callbacks] of listeners) {
      for (const callback of callbacks) {
        const event = new CustomEvent(topic, { detail: null });
        if (typeof callback === 'function') callback(event);
        else callback?.handleEvent(event);
      }
    }
    logger.info({ subscriptions: topics.length }, 'Redis is back: open subscriptions re-read their generations');
  };
  watchLink(publisher, 'publish', logger, () => stopping);
  watchLink(subscriber, 'subscribe', logger, () => stopping, () => {
    resubscribeAndWake().catch((error: Error) => logger.warn({ err: error.message }, 'could not subscribe again after a Redis outage'));
  });

  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
  } catch (error) {
    await stop();
    throw error;
  }
  const inner = createRedisEventTarget({
    publishClient: catching(publisher, ['publish'], (error) => logger.debug({ err: error.message }, 'a subscription event was not published')),
    subscribeClient: catching(subscriber, ['subscribe', 'unsubscribe'], (error) => logger.debug({ err: error.message }, 'a Redis (un)subscribe failed')),
  });
  const eventTarget: PubSubEventTarget = {
    addEventListener(topic, listener) {
      inner.addEventListener(topic, listener);
      if (!listeners.has(topic)) listeners.set(topic, new Set());
      listeners.get(topic)!.add(listener as Listener);
    },
    removeEventListener(topic, listener) {
      inner.removeEventListener(topic, listener);
      const callbacks = listeners.get(topic);
      callbacks?.delete(listener as Listener);
      if (callbacks?.size === 0) listeners.delete(topic);
    },
    dispatchEvent: (event) => inner.dispatchEvent(event),
  };
  return { eventTarget, available: () => publisher.status === 'ready' && subscriber.status === 'ready', stop };
}

/**
 * Logs an outage of one connection once (not at every reconnect attempt) and its end; calls
 * `onBack` when the connection is ready again after an outage. The 'error' listener also keeps
 * ioredis from reporting each failed attempt as an unhandled error event.
 */
function watchLink(client: Redis, role: string, logger: Logger, stopping: () => boolean, onBack?: () => void): void {
  let down = false;
  const lost = (reason: string) => {
    if (down || stopping()) return;
    down = true;
    logger.warn({ redis: role, reason }, 'Redis is unreachable: subscription events pause until it is back');
  };
  client.on('error', (error: Error) => lost(error.message));
  client.on('close', () => lost('connection closed'));
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ redis: role }, 'Redis connection is back');
    onBack?.();
  });
}

/** `client`, with the promises of `methods` caught, since the event target neither awaits nor catches them. */
function catching(client: Redis, methods: string[], onError: (error: Error) => void): Redis {
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (typeof property === 'string' && methods.includes(property)) {
        return (...args: unknown[]) => (value.apply(target, args) as Promise<unknown>).catch(onError);
      }
      return value.bind(target);
    },
  });
}
