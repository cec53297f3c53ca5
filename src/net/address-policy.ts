import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { buildConnector } from 'undici';
import { loadUndici } from './undici.ts';

/**
 * Which addresses outgoing requests on a client's behalf (webhooks) may reach: the public
 * internet only. Loopback, private, link-local, CGNAT, multicast, unspecified, broadcast,
 * documentation and other reserved ranges are refused, and so are IPv6 forms that carry such an
 * IPv4 address (IPv4-mapped and -compatible, NAT64, 6to4).
 */
const IPV4_DENIED: [string, number][] = [
  ['0.0.0.0', 8], // "this network", including the unspecified address
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including 255.255.255.255
];

/** Within global unicast (2000::/3), the special-purpose blocks; everything outside 2000::/3 is refused anyway. */
const IPV6_DENIED: [string, number][] = [
  ['2001::', 23], // IETF protocol assignments (Teredo, benchmarking, ORCHID)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
];

const denied = new BlockList();
for (const [network, prefix] of IPV4_DENIED) denied.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of IPV6_DENIED) denied.addSubnet(network, prefix, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (which may end in dotted IPv4, or carry a zone). */
function ipv6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  return tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const ipv4Of = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;

/** Whether a connection to this IP address (v4 or v6 literal) is allowed. Anything that is not an IP address is not. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return !denied.check(address, 'ipv4');
  if (family !== 6) return false;
  const g = ipv6Groups(address);
  const zeroPrefix = g.slice(0, 5).every((group) => group === 0);
  // IPv4-mapped (::ffff:a.b.c.d) carries the IPv4 address it reaches.
  if (zeroPrefix && g[5] === 0xffff) return isPublicAddress(ipv4Of(g[6]!, g[7]!));
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((group) => group === 0)) return isPublicAddress(ipv4Of(g[6]!, g[7]!));
  if (g[0] === 0x2002) return isPublicAddress(ipv4Of(g[1]!, g[2]!));
  // Outside global unicast: unspecified, loopback, IPv4-compatible (::/96), ULA (fc00::/7),
  // link-local (fe80::/10), site-local, multicast (ff00::/8), discard-only and unassigned space.
  if ((g[0]! & 0xe000) !== 0x2000) return false;
  return !denied.check(address.replace(/%.*$/, ''), 'ipv6');
}

/** The host of a URL as an address or a name: IPv6 literals without their brackets. */
export function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
}

export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
  readonly code = 'EADDRBLOCKED';
  constructor() {
    super('the destination is not a public internet address');
  }
}

/**
 * Whether a host (an IP literal or a name) may be reached: a name must resolve to public addresses
 * only. A name that does not resolve (now, or within `timeoutMs`) is not refused here: the
 * connection checks the addresses it gets again (see guardedLookup).
 */
export async function hostIsAllowed(host: string, timeoutMs = 3000): Promise<boolean> {
  if (isIP(host)) return isPublicAddress(host);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  try {
    const addresses = await Promise.race([dnsLookupAsync(host, { all: true, verbatim: true }).catch(() => null), timeout]);
    return addresses === null || addresses.every((entry) => isPublicAddress(entry.address));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A `lookup` for sockets that fails with BlockedAddressError when a name resolves to any address
 * that is not public. The check happens on the addresses the socket is about to use, so a name
 * whose DNS answer changes after it was checked (DNS rebinding) cannot reach an internal address.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  const all = (options as LookupAllOptions).all === true;
  dnsLookup(hostname, { ...(options as LookupOneOptions), all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    if (!addresses.length || !addresses.every((entry) => isPublicAddress(entry.address))) return callback(new BlockedAddressError(), '', 0);
    if (all) return (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

/**
 * An undici connector that reaches public addresses only: IP literals are checked before the
 * connection is opened, names through guardedLookup. Nothing is sent to a refused address.
 */
export async function publicOnlyConnector(options: { timeoutMs: number }): Promise<buildConnector.connector> {
  const { buildConnector } = await loadUndici();
  const connect = buildConnector({ lookup: guardedLookup, timeout: options.timeoutMs });
  return (target, callback) => {
    if (isIP(target.hostname) && !isPublicAddress(target.hostname)) return callback(new BlockedAddressError(), null);
    connect(target, callback);
  };
}

/** Whether an error (or any error it wraps) is a refusal by this policy. */
export function isBlockedAddressError(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (current instanceof BlockedAddressError) return true;
    if (current instanceof AggregateError && current.errors.some((inner) => isBlockedAddressError(inner))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
