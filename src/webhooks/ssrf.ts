// Server-side request forgery: a webhook URL is the tenant's to choose, so without these checks it
// could make our servers POST to our own network (a database's HTTP port, a cloud metadata
// service). URLs are checked at registration and again at delivery, where the connection is
// pinned to the addresses checked (see pinnedLookup): a DNS answer that changes in between
// (DNS rebinding) is checked again, not trusted.
import dns from 'node:dns';
import net from 'node:net';

/** Whether private addresses and plain http are allowed (WEBHOOKS_ALLOW_PRIVATE_URLS). */
export interface UrlPolicy {
  readonly allowPrivateUrls: boolean;
  /** Tests: resolves names instead of the system resolver (dns.lookup's signature). */
  readonly lookup?: LookupFunction | undefined;
}

export type LookupFunction = (
  hostname: string,
  options: { all: true },
  callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

// [first address, prefix length, class]; IPv4 as a.b.c.d, IPv6 in any valid form.
const V4_RANGES: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (carrier-grade NAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];
const V6_RANGES: Array<[string, number, string]> = [
  ['100::', 64, 'reserved'],
  // RFC 5180: benchmarking (198.18.0.0/15's counterpart).
  ['2001:2::', 48, 'reserved (benchmarking)'],
  // RFC 4843: ORCHID, deprecated by RFC 7343 (whose ORCHIDv2, 2001:20::/28, is routable).
  ['2001:10::', 28, 'reserved (ORCHID, deprecated)'],
  ['2001:db8::', 32, 'documentation'],
  // RFC 9637: the second documentation prefix.
  ['3fff::', 20, 'documentation'],
  // RFC 9602: SRv6 segment identifiers, for use inside an SRv6 domain, never globally reachable.
  ['5f00::', 16, 'reserved (SRv6 segment identifiers)'],
  ['fc00::', 7, 'private (unique local)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'reserved'],
  ['ff00::', 8, 'multicast'],
];

/**
 * IPv6 addresses that carry an IPv4 address: the range, where the IPv4 address is (a function of
 * the 16 bytes; Teredo's client address is stored inverted), and the class of the form itself
 * when the IPv4 address is public: undefined where the form reaches that address over the public
 * internet, a class for the deprecated and local-use forms, which a webhook never needs.
 */
const EMBEDDING: Array<{ range: [string, number]; v4: (b: number[]) => number[][]; own?: string }> = [
  // RFC 4291 §2.5.5.2: IPv4-mapped, ::ffff:a.b.c.d: the socket connects to the IPv4 address itself.
  { range: ['::ffff:0:0', 96], v4: (b) => [b.slice(12)] },
  // RFC 6145 (SIIT): IPv4-translated, ::ffff:0:a.b.c.d.
  { range: ['::ffff:0:0:0', 96], v4: (b) => [b.slice(12)], own: 'reserved (IPv4-translated)' },
  // RFC 4291 §2.5.5.1: IPv4-compatible, ::a.b.c.d (deprecated; :: and ::1 are checked first).
  { range: ['::', 96], v4: (b) => [b.slice(12)], own: 'reserved (IPv4-compatible)' },
  // RFC 6052: NAT64 well-known prefix, 64:ff9b::a.b.c.d (what DNS64 answers on IPv6-only networks).
  { range: ['64:ff9b::', 96], v4: (b) => [b.slice(12)] },
  // RFC 8215: local-use NAT64, a network's own translator; where the IPv4 address sits depends on
  // that network's prefix length, and the form is never public: refused whatever it carries.
  { range: ['64:ff9b:1::', 48], v4: () => [], own: 'private (local-use NAT64)' },
  // RFC 3056: 6to4, 2002:AABB:CCDD::/48 for the IPv4 address AA.BB.CC.DD.
  { range: ['2002::', 16], v4: (b) => [b.slice(2, 6)] },
  // RFC 4380: Teredo, 2001:0:<server IPv4>:<flags>:<port>:<client IPv4, every bit inverted>.
  {
    range: ['2001::', 32],
    v4: (b) => [b.slice(12).map((x) => x ^ 0xff), b.slice(4, 8)],
    own: 'reserved (Teredo)',
  },
];

/** The 16 bytes of an IPv6 address (a valid one: net.isIPv6 said so). */
function v6Bytes(address: string): number[] {
  let text = address.split('%')[0]!; // a zone id does not change the class
  const bytes: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dotted) {
    tail = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + '0:0';
  }
  const [head = '', rest] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const front = groups(head);
  const back = rest === undefined ? [] : groups(rest);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  for (const group of all) bytes.push(group >> 8, group & 0xff);
  if (dotted) bytes.splice(12, 4, ...tail);
  return bytes;
}

const v4Bytes = (address: string) => address.split('.').map(Number);

function inRange(bytes: number[], first: number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3]! & mask) !== (first[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** Why an IP address may not be the target of a webhook; undefined for a public unicast address. */
export function forbiddenAddressClass(address: string): string | undefined {
  if (net.isIPv4(address)) {
    const bytes = v4Bytes(address);
    if (address === '255.255.255.255') return 'broadcast';
    return V4_RANGES.find(([first, prefix]) => inRange(bytes, v4Bytes(first), prefix))?.[2];
  }
  if (!net.isIPv6(address)) return 'not an IP address';
  const bytes = v6Bytes(address);
  if (bytes.every((b, i) => b === (i === 15 ? 1 : 0))) return 'loopback';
  if (bytes.every((b) => b === 0)) return 'unspecified';
  // An address that carries an IPv4 address is what that address is, or its form's own class.
  const form = EMBEDDING.find(({ range: [first, prefix] }) => inRange(bytes, v6Bytes(first), prefix));
  if (form) {
    const carried = form.v4(bytes).map((v4) => forbiddenAddressClass(v4.join('.')));
    return carried.find((c) => c !== undefined) ?? form.own;
  }
  return V6_RANGES.find(([first, prefix]) => inRange(bytes, v6Bytes(first), prefix))?.[2];
}

/** Names that always mean "inside": loopback, mDNS, private-use TLDs, cloud metadata, bare labels. */
function forbiddenName(hostname: string): string | undefined {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return 'a loopback name';
  if (name === 'metadata.google.internal' || name === 'metadata' || name === 'instance-data')
    return 'a cloud metadata name';
  if (/\.(local|internal|localdomain|home\.arpa|intranet|lan)$/.test(name)) return 'an internal name';
  if (!name.includes('.')) return 'a single-label (internal) name';
  return undefined;
}

/**
 * Why a host name is not a DNS name a webhook could reach; undefined when it is one: at most 253
 * characters (a trailing dot aside), labels of 1 to 63 letters, digits, hyphens (not first or
 * last) and underscores. The URL parser has already turned an internationalized name into its
 * ASCII (punycode) form, and lower-cased it.
 */
function hostNameProblem(hostname: string): string | undefined {
  const name = hostname.replace(/\.$/, '');
  if (name.length > 253) return 'is longer than 253 characters';
  for (const label of name.split('.')) {
    if (label === '') return 'has an empty label';
    if (label.length > 63) return 'has a label longer than 63 characters';
    if (!/^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/.test(label))
      return `has a label (${label}) that is not letters, digits and inner hyphens`;
  }
  return undefined;
}

/** Whether the URL's text has an "@" in its authority: user info, even an empty one (https://:@host). */
function hasUserInfo(text: string): boolean {
  const authority = /^[\s]*[a-z][a-z\d+.-]*:[\\/]*([^\\/?#]*)/i.exec(text.replace(/[\t\n\r]/g, ''))?.[1];
  return authority?.includes('@') ?? false;
}

/** The URL's host as an IP address (brackets removed), or undefined for a name. */
function ipOf(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return net.isIP(host) ? host : undefined;
}

export class RefusedAddressError extends Error {
  override name = 'RefusedAddressError';
  readonly code = 'EWEBHOOKADDRESS';
}

/** "an" before a vowel ("an unspecified address"), else "a". */
const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

/**
 * What is wrong with a webhook URL before any DNS lookup (scheme, credentials, internal names,
 * forbidden IP literals); undefined when nothing is.
 */
export function urlProblem(text: string, policy: UrlPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // A port past 65535 or a host with characters no host has fails here too, not only a relative URL.
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*:(\d{6,}|6553[6-9]|655[4-9]\d|65[6-9]\d\d|6[6-9]\d{3}|[7-9]\d{4})(?=[/?#]|$)/i.test(
      text,
    )
      ? 'has a port past 65535'
      : 'is not a valid absolute URL (scheme://host/...)';
  }
  const schemes = policy.allowPrivateUrls ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) return `must use ${schemes.join(' or ')}`;
  // The host as written: the URL parser finds one in `https:///hooks`, `https:hooks` or
  // `https:\\hooks` too (the path's first segment), which is not where the text says events go.
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\\?#]/i.test(text))
    return 'has no host after its scheme (https://host/...)';
  if (url.username || url.password || hasUserInfo(text)) return 'must not contain a user name or password';
  if (url.hostname === '') return 'has no host';
  // Port 0 is no port a server listens on: every delivery would fail.
  if (url.port === '0') return 'names port 0';
  const ip = ipOf(url);
  // A name that cannot be resolved, ever: no delivery could reach it.
  const invalid = ip ? undefined : hostNameProblem(url.hostname);
  if (invalid) return `is not a valid host name (${url.hostname}): it ${invalid}`;
  if (policy.allowPrivateUrls) return undefined;
  if (ip) {
    const forbidden = forbiddenAddressClass(ip);
    return forbidden && `names ${article(forbidden)} ${forbidden} address (${ip})`;
  }
  const name = forbiddenName(url.hostname);
  return name && `names ${name} (${url.hostname})`;
}

/** Resolves a name with every address checked; fails with RefusedAddressError if any is forbidden. */
function resolveChecked(
  hostname: string,
  policy: UrlPolicy,
  callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
): void {
  const lookup: LookupFunction = policy.lookup ?? dns.lookup;
  lookup(hostname, { all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    if (addresses.length === 0) return callback(new Error(`${hostname} has no address`), []);
    if (!policy.allowPrivateUrls) {
      // One bad address refuses the name: the connection could otherwise be steered to it.
      for (const { address } of addresses) {
        const forbidden = forbiddenAddressClass(address);
        if (forbidden) {
          return callback(
            new RefusedAddressError(
              `${hostname} resolves to ${article(forbidden)} ${forbidden} address (${address})`,
            ),
            [],
          );
        }
      }
    }
    callback(null, addresses);
  });
}

/**
 * The whole check of a URL at registration: its form, then what its name resolves to now. A name
 * that does not resolve (yet) is accepted: the check at delivery stands guard either way.
 */
export async function checkWebhookUrl(
  text: string,
  policy: UrlPolicy,
  timeoutMs = 3000,
): Promise<string | undefined> {
  const problem = urlProblem(text, policy);
  if (problem || policy.allowPrivateUrls) return problem;
  const url = new URL(text);
  if (ipOf(url)) return undefined;
  const refused = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    resolveChecked(url.hostname, policy, (error) => {
      clearTimeout(timer);
      resolve(error instanceof RefusedAddressError ? error.message : undefined);
    });
  });
  return refused;
}

/**
 * A `lookup` for http(s).request: the socket connects only to addresses this function checked,
 * so what was checked is what is connected to.
 */
export function pinnedLookup(policy: UrlPolicy): net.LookupFunction {
  return (hostname, options, callback) => {
    resolveChecked(hostname, policy, (error, addresses) => {
      if (error) return callback(error, []);
      const wanted = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
      const usable = addresses.filter((a) => wanted === 0 || a.family === wanted);
      const first = usable[0];
      if (!first) return callback(new Error(`${hostname} has no IPv${wanted} address`), []);
      if (options.all) return callback(null, usable);
      callback(null, first.address, first.family);
    });
  };
}
