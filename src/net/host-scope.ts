import { BlockList, isIP } from 'node:net';

/**
 * Where a host lives, as seen from the internet: `public` hosts can be reached by a service such
 * as Segmind; the others cannot (or only from the same machine or network).
 */
export type HostScope = 'loopback' | 'private' | 'link-local' | 'reserved' | 'public';

const RANGES: [HostScope, string, number, 'ipv4' | 'ipv6'][] = [
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['loopback', '::1', 128, 'ipv6'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['private', '100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['private', 'fc00::', 7, 'ipv6'], // unique local
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['reserved', '0.0.0.0', 8, 'ipv4'], // "this network", including the unspecified address
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['reserved', '192.0.2.0', 24, 'ipv4'], // documentation
  ['reserved', '198.18.0.0', 15, 'ipv4'], // benchmarking
  ['reserved', '198.51.100.0', 24, 'ipv4'], // documentation
  ['reserved', '203.0.113.0', 24, 'ipv4'], // documentation
  ['reserved', '224.0.0.0', 3, 'ipv4'], // multicast and reserved, up to 255.255.255.255
  ['reserved', '::', 128, 'ipv6'],
  ['reserved', 'ff00::', 8, 'ipv6'], // multicast
  ['reserved', '2001:db8::', 32, 'ipv6'], // documentation
];

/** One list per scope; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches the IPv4 ranges too. */
const lists = new Map<HostScope, BlockList>();
for (const [scope, network, prefix, family] of RANGES) {
  if (!lists.has(scope)) lists.set(scope, new BlockList());
  lists.get(scope)!.addSubnet(network, prefix, family);
}

/** Names that never resolve on the internet: localhost (RFC 6761), mDNS, and the names set aside for private use. */
const LOCAL_NAMES: [RegExp, HostScope][] = [
  [/(^|\.)localhost$/, 'loopback'],
  [/\.local$/, 'link-local'],
  [/(\.internal|\.home\.arpa|\.lan)$/, 'private'],
  // A single label ("minio", "db") is a name on some local network, never a public one.
  [/^[^.]+$/, 'private'],
];

/**
 * The scope of a host name or IP literal (IPv6 with or without brackets). A name that is not
 * local by its form counts as public: it is not resolved here, so what it points at is not known.
 */
export function hostScope(host: string): HostScope {
  const bare = host.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '').replace(/\.$/, '').toLowerCase();
  const family = isIP(bare);
  if (family === 0) return LOCAL_NAMES.find(([pattern]) => pattern.test(bare))?.[1] ?? 'public';
  for (const [scope, list] of lists) if (list.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return scope;
  return 'public';
}

/** The scope of a URL's host. */
export const urlHostScope = (url: string): HostScope => hostScope(new URL(url).hostname);
