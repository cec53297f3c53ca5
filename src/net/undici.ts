/**
 * undici, loaded on first use. It is about 110 modules, a good part of a start, and only calls to
 * Segmind, webhook deliveries and output downloads need it: all of them after the server listens
 * (src/start/boot.ts loads it right after the start).
 */
let loading: Promise<typeof import('undici')> | undefined;

export function loadUndici(): Promise<typeof import('undici')> {
  loading ??= import('undici');
  return loading;
}
