import { useReadinessCheck, type Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.ts';

/** A dependency that must work for this process to serve requests. */
export interface ReadinessCheck {
  /** The key in /ready's answer, e.g. "database". */
  name: string;
  /**
   * Resolves when the dependency can be used: with a word that describes its state (shown instead
   * of "ok"), or nothing. Rejects when it cannot: with a `NotReady` to name the state, or any
   * other error, shown as "unavailable" (its text goes only to the log).
   */
  check(): Promise<unknown>;
}

/** A dependency that answers, but in a state that keeps this process from being ready. */
export class NotReady extends Error {
  override name = 'NotReady';
  readonly state: string;
  constructor(state: string) {
    super(state);
    this.state = state;
  }
}

/**
 * /ready: 200 when every check passes, 503 otherwise, with the state of each dependency by name,
 * e.g. {"database":"unavailable","queue":"ok","upstream":"closed"}. No error text reaches the
 * (unauthenticated) response; a check that takes longer than `timeoutMs` counts as unavailable.
 */
export function useReadiness(checks: ReadinessCheck[], logger: Logger, timeoutMs = 3000): Plugin {
  return useReadinessCheck({
    endpoint: '/ready',
    check: async () => {
      const states = await Promise.all(checks.map((c) => stateOf(c, logger, timeoutMs)));
      const ready = states.every(([, ok]) => ok);
      const body = JSON.stringify(Object.fromEntries(checks.map((c, i) => [c.name, states[i]![0]])));
      return new Response(body, { status: ready ? 200 : 503, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
    },
  });
}

async function stateOf(readiness: ReadinessCheck, logger: Logger, timeoutMs: number): Promise<[state: string, ok: boolean]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const state = await Promise.race([readiness.check(), timeout]);
    return [typeof state === 'string' ? state : 'ok', true];
  } catch (error) {
    if (error instanceof NotReady) return [error.state, false];
    logger.warn({ dependency: readiness.name, err: error instanceof Error ? error.message : String(error) }, 'readiness check failed');
    return ['unavailable', false];
  } finally {
    clearTimeout(timer);
  }
}
