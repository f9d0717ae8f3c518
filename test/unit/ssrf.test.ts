// Every IPv6 form that carries an IPv4 address is classified by that address (a loopback inside
// any of them is a loopback), in hex or dotted spelling, expanded or compressed; the deprecated
// and local-use forms are refused even around a public address.
import { describe, expect, it } from 'vitest';
import { forbiddenAddressClass, urlProblem } from '../../src/webhooks/ssrf.js';

/** [address, expected class]; undefined: a public address, accepted. */
const TABLE: Array<[string, string | undefined]> = [
  // IPv4-mapped ::ffff:0:0/96: exactly its IPv4 address.
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
  ['0000:0000:0000:0000:0000:FFFF:7F00:0001', 'loopback'],
  ['::ffff:169.254.169.254', 'link-local (cloud metadata)'],
  ['::ffff:a9fe:a9fe', 'link-local (cloud metadata)'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:8.8.8.8', undefined],
  ['::ffff:808:808', undefined],
  // IPv4-translated ::ffff:0:0:0/96 (RFC 6145).
  ['::ffff:0:127.0.0.1', 'loopback'],
  ['::ffff:0:7f00:1', 'loopback'],
  ['0:0:0:0:ffff:0:7f00:1', 'loopback'],
  ['0:0:0:0:ffff:0:127.0.0.1', 'loopback'],
  ['0000:0000:0000:0000:ffff:0000:7f00:0001', 'loopback'],
  ['::ffff:0:a9fe:a9fe', 'link-local (cloud metadata)'],
  ['::ffff:0:192.168.1.1', 'private'],
  ['::ffff:0:8.8.8.8', 'reserved (IPv4-translated)'],
  // IPv4-compatible ::/96 (deprecated): never public; :: and ::1 keep their own classes.
  ['::127.0.0.1', 'loopback'],
  ['::7f00:1', 'loopback'],
  ['0:0:0:0:0:0:10.0.0.1', 'private'],
  ['::8.8.8.8', 'reserved (IPv4-compatible)'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::', 'unspecified'],
  ['::0.0.0.2', 'unspecified'],
  // NAT64 well-known prefix 64:ff9b::/96: public IPv4 addresses are reachable through it.
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::7f00:1', 'loopback'],
  ['64:ff9b:0:0:0:0:a9fe:a9fe', 'link-local (cloud metadata)'],
  ['0064:ff9b:0000:0000:0000:0000:0a00:0001', 'private'],
  ['64:ff9b::8.8.8.8', undefined],
  // NAT64 local-use 64:ff9b:1::/48 (RFC 8215): a network's own translator, never public.
  ['64:ff9b:1::127.0.0.1', 'private (local-use NAT64)'],
  ['64:ff9b:1:7f00:0:100::', 'private (local-use NAT64)'], // 127.0.0.1 at the /48 position
  ['64:ff9b:1::8.8.8.8', 'private (local-use NAT64)'],
  ['64:ff9b:1:abcd::1', 'private (local-use NAT64)'],
  // 6to4 2002::/16: the IPv4 address in the second and third groups.
  ['2002:7f00:1::', 'loopback'],
  ['2002:7f00:0001:0000:0000:0000:0000:0001', 'loopback'],
  ['2002:a9fe:a9fe::1', 'link-local (cloud metadata)'],
  ['2002:c0a8:101::1', 'private'],
  ['2002:808:808::1', undefined],
  // Teredo 2001::/32: server IPv4 in groups 3-4, client IPv4 inverted in groups 7-8.
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // client 127.0.0.1
  ['2001:0000:4136:e378:8000:63bf:5601:5601', 'link-local (cloud metadata)'], // client 169.254.169.254
  ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'private'], // server 10.0.0.1, client 8.8.8.8
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'reserved (Teredo)'], // both public
  // Ordinary IPv6, for contrast.
  ['2606:4700:4700::1111', undefined],
  ['2001:db8::1', 'documentation'],
  ['fe80::ffff:7f00:1', 'link-local'],
];

describe('forbiddenAddressClass', () => {
  it('classifies every IPv6 form that carries an IPv4 address', () => {
    const results = TABLE.map(([address]) => [address, forbiddenAddressClass(address)]);
    expect(results).toEqual(TABLE);
  });

  it('refuses them in webhook URLs, whichever spelling the URL parser normalises them to', () => {
    for (const [address, expected] of TABLE) {
      const problem = urlProblem(`https://[${address}]/hook`, { allowPrivateUrls: false });
      if (expected === undefined) expect([address, problem]).toEqual([address, undefined]);
      else
        expect([address, problem]).toEqual([
          address,
          expect.stringContaining(`names ${/^[aeiou]/.test(expected) ? 'an' : 'a'} ${expected} address`),
        ]);
    }
  });
});

describe('a webhook URL without a host as written', () => {
  it('is refused, though the URL parser would take the first segment of its path for one', () => {
    for (const text of ['http:///h', 'https:///hooks', 'https:hooks/x', 'https:\\\\hooks\\x'])
      expect([text, urlProblem(text, { allowPrivateUrls: true })]).toEqual([
        text,
        expect.stringMatching(/host/),
      ]);
    expect(urlProblem('https://hooks.example.com/x', { allowPrivateUrls: true })).toBeUndefined();
    expect(urlProblem('http://127.0.0.1:41317/h', { allowPrivateUrls: true })).toBeUndefined();
  });
});

describe('a webhook URL the URL parser refuses', () => {
  it('says a port is out of range when it is, and what an absolute URL is otherwise', () => {
    const policy = { allowPrivateUrls: true };
    for (const text of ['https://hooks.example.com:99999/x', 'http://127.0.0.1:65536', 'https://h:1000000?a'])
      expect([text, urlProblem(text, policy)]).toEqual([text, 'has a port past 65535']);
    expect(urlProblem('https://h:65535/x', policy)).toBeUndefined();
    for (const text of ['/hooks', 'hooks.example.com', 'https://exa mple.com/'])
      expect([text, urlProblem(text, policy)]).toEqual([
        text,
        'is not a valid absolute URL (scheme://host/...)',
      ]);
  });
});
