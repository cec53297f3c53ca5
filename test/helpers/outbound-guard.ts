import dc from 'node:diagnostics_channel';
import dns from 'node:dns';
import type { Socket } from 'node:net';
import { hostScope } from '../../src/net/host-scope.ts';

export interface OutboundGuard {
  /** Public host names something in this process tried to resolve; each was refused before any DNS query. */
  refusedLookups: string[];
  /** Every TCP connection attempt in this process, as `address:port`. */
  attempts: string[];
  /** The attempts that went to a public address. */
  publicAttempts(): string[];
  stop(): void;
}

/**
 * Keeps a test off the internet and records what it tried: a public host name is never resolved
 * (its lookup fails with ENOTFOUND, so no connection follows), and every connection attempt of
 * the process is recorded through the `net.client.socket` diagnostics channel. Local names and
 * addresses (the database, the fake Segmind, the server under test) are left alone.
 */
export function guardOutbound(): OutboundGuard {
  const refusedLookups: string[] = [];
  const attempts: string[] = [];
  const original = dns.lookup;
  const guarded = function (hostname: string, ...rest: unknown[]) {
    if (hostScope(hostname) !== 'public') return (original as (...args: unknown[]) => unknown).call(dns, hostname, ...rest);
    refusedLookups.push(hostname);
    const callback = rest.at(-1) as (error: Error) => void;
    process.nextTick(() => callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (refused by the test's outbound guard)`), { code: 'ENOTFOUND', hostname })));
  };
  dns.lookup = guarded as typeof dns.lookup;
  const onSocket = (message: unknown) => {
    const { socket } = message as { socket: Socket };
    socket.on('connectionAttempt', (address: string, port: number) => attempts.push(`${address}:${port}`));
  };
  dc.subscribe('net.client.socket', onSocket);
  return {
    refusedLookups,
    attempts,
    publicAttempts: () => attempts.filter((attempt) => hostScope(attempt.replace(/:\d+$/, '')) === 'public'),
    stop() {
      dc.unsubscribe('net.client.socket', onSocket);
      dns.lookup = original;
    },
  };
}
