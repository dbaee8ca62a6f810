import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/infrastructure/config/load-config.js';
import { canonicalAddress, clientAddressResolver, UNKNOWN_CLIENT } from '../../src/transport/connect/client-address.resolver.js';

/** The contract's default: a sidecar on loopback. */
const behindSidecar = clientAddressResolver(['127.0.0.0/8', '::1/128']);
/** A load balancer network in front of the sidecar. */
const behindTwoTiers = clientAddressResolver(['127.0.0.0/8', '::1/128', '10.0.0.0/8', 'fd00::/8']);
const noProxy = clientAddressResolver(undefined);

const LONGEST_IPV6 = 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'.length;

describe('TRUST_PROXY off', () => {
  it('the peer is the client whatever the header says', () => {
    expect(noProxy('192.0.2.10', '203.0.113.1')).toBe('192.0.2.10');
    expect(noProxy('127.0.0.1', '203.0.113.1, 198.51.100.2')).toBe('127.0.0.1');
  });

  it('a peer the socket no longer knows is "unknown"', () => {
    expect(noProxy(undefined, '203.0.113.1')).toBe(UNKNOWN_CLIENT);
  });
});

describe('TRUST_PROXY on: the proxy-addr walk', () => {
  it('an untrusted peer is the client: its header is never read', () => {
    expect(behindSidecar('192.0.2.10', '203.0.113.1')).toBe('192.0.2.10');
    expect(behindSidecar('192.0.2.10', '127.0.0.1')).toBe('192.0.2.10');
    expect(behindTwoTiers('203.0.113.50', '10.1.1.1, 127.0.0.1')).toBe('203.0.113.50');
  });

  it('a trusted peer without a header is the client itself', () => {
    expect(behindSidecar('127.0.0.1', undefined)).toBe('127.0.0.1');
    expect(behindSidecar('127.0.0.1', '')).toBe('127.0.0.1');
    expect(behindSidecar('127.0.0.1', ' , ,')).toBe('127.0.0.1');
  });

  it('a trusted peer: the rightmost entry it reports is the client', () => {
    expect(behindSidecar('127.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(behindSidecar('::1', '203.0.113.7')).toBe('203.0.113.7');
  });

  it('several hops: the walk skips every trusted proxy and stops at the first address outside', () => {
    expect(behindTwoTiers('127.0.0.1', '203.0.113.7, 10.0.0.5')).toBe('203.0.113.7');
    expect(behindTwoTiers('127.0.0.1', '203.0.113.7,10.0.0.5,10.20.0.1, 127.0.0.9')).toBe('203.0.113.7');
    // Entries left of the client are whatever the client sent: never reached.
    expect(behindTwoTiers('127.0.0.1', '198.51.100.1, 192.0.2.99, 203.0.113.7, 10.0.0.5')).toBe('203.0.113.7');
  });

  it('the first hop is not the client: a proxy we do not trust is (its own claims are not believed)', () => {
    expect(behindSidecar('127.0.0.1', '203.0.113.7, 10.0.0.5')).toBe('10.0.0.5');
  });

  it('rotating what the client prepends changes nothing', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) seen.add(behindTwoTiers('127.0.0.1', `192.0.2.${i}, 203.0.113.7, 10.0.0.5`));
    expect([...seen]).toEqual(['203.0.113.7']);
  });

  it('all hops trusted: the leftmost entry is the client', () => {
    expect(behindTwoTiers('127.0.0.1', '10.0.0.1, 10.0.0.2')).toBe('10.0.0.1');
  });

  it('every entry of a header sent twice counts, joined in order', () => {
    expect(behindTwoTiers('127.0.0.1', ['203.0.113.7', '10.0.0.5'])).toBe('203.0.113.7');
  });
});

describe('garbage entries stop the walk; the trusted hop that passed them on is the client', () => {
  it.each([
    ['a word', 'unknown, 10.0.0.5', '10.0.0.5'],
    ['a host name', 'client.example.com, 10.0.0.5', '10.0.0.5'],
    ['an address with a port', '203.0.113.7:4711', '127.0.0.1'],
    ['an RFC 7239 quoted form', '"[2001:db8::1]:80"', '127.0.0.1'],
    ['a bracketed IPv6', '[2001:db8::1]', '127.0.0.1'],
    ['a value with an injected line', 'x\nlevel=fatal', '127.0.0.1'],
    ['an address in a form only some parsers take (32-bit integer)', '3405803783', '127.0.0.1'],
  ])('%s', (_what, header, expected) => {
    expect(behindTwoTiers('127.0.0.1', header)).toBe(expected);
  });

  it('garbage left of the client is never reached', () => {
    expect(behindTwoTiers('127.0.0.1', 'garbage, 203.0.113.7, 10.0.0.5')).toBe('203.0.113.7');
  });

  it('a 9,000-character header gives an address no longer than an IPv6 one', () => {
    for (const header of ['a'.repeat(9_000), `${'x'.repeat(9_000)}, 10.0.0.5`, '1.2.3.4,'.repeat(1_125), `fe80::1%${'e'.repeat(9_000)}`]) {
      const address = behindTwoTiers('127.0.0.1', header);
      expect(address.length).toBeLessThanOrEqual(LONGEST_IPV6);
      expect(canonicalAddress(address)).toBe(address);
    }
  });

  it('random bytes never throw and always give an IP address', () => {
    const alphabet = '0123456789abcdef.:,% []"\n\u00e9xX';
    for (let round = 0; round < 2_000; round++) {
      let header = '';
      for (let i = 0; i < 40; i++) header += alphabet[Math.floor(Math.random() * alphabet.length)];
      const address = behindSidecar('127.0.0.1', header);
      expect(canonicalAddress(address), JSON.stringify(header)).toBe(address);
    }
  });
});

describe('IPv6 and IPv4-mapped addresses', () => {
  it('a mapped peer (a dual-stack listener) is trusted by an IPv4 range and reported as IPv4', () => {
    expect(behindSidecar('::ffff:127.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(noProxy('::ffff:192.0.2.10', undefined)).toBe('192.0.2.10');
    expect(behindSidecar('::ffff:192.0.2.10', '203.0.113.7')).toBe('192.0.2.10');
  });

  it('mapped entries are trusted by IPv4 ranges and the client is reported in one spelling', () => {
    expect(behindTwoTiers('127.0.0.1', '::ffff:203.0.113.7, ::ffff:10.0.0.5')).toBe('203.0.113.7');
    expect(behindTwoTiers('127.0.0.1', '203.0.113.7, ::ffff:a00:5')).toBe('203.0.113.7');
  });

  it('IPv6 hops are walked like IPv4 ones and the client is written in its short lower-case form', () => {
    expect(behindTwoTiers('::1', '2001:DB8:0:0:0:0:0:1, fd00::5')).toBe('2001:db8::1');
    expect(behindTwoTiers('::1', '2001:db8::1, 2001:db8::2')).toBe('2001:db8::2');
    expect(behindSidecar('2001:db8::9', '203.0.113.7')).toBe('2001:db8::9');
  });

  it('an IPv4 range does not trust a native IPv6 address, and the reverse', () => {
    const v4Only = clientAddressResolver(['127.0.0.0/8']);
    expect(v4Only('::1', '203.0.113.7')).toBe('::1');
    expect(v4Only('127.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    const v6Only = clientAddressResolver(['::1/128']);
    expect(v6Only('127.0.0.1', '203.0.113.7')).toBe('127.0.0.1');
    expect(v6Only('::1', '203.0.113.7')).toBe('203.0.113.7');
  });

  it.each([
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['192.0.2.1', '192.0.2.1'],
    ['::1', '::1'],
  ])('canonicalAddress(%j) is %j', (text, expected) => {
    expect(canonicalAddress(text)).toBe(expected);
  });

  it('canonicalAddress refuses what is not an IP address', () => {
    for (const text of ['', 'localhost', '1.2.3', '1.2.3.4.5', '01.2.3.4', '::ffff:1.2.3', '::ffff:', '[::1]', '1.2.3.4/32', undefined]) {
      expect(canonicalAddress(text)).toBeUndefined();
    }
  });
});

describe('TRUSTED_PROXIES config', () => {
  const problems = (value: string): readonly string[] => {
    try {
      loadConfig({ TRUSTED_PROXIES: value });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems;
    }
    throw new Error(`expected ${value} to be refused`);
  };

  it('defaults to loopback (a sidecar) and takes a comma-separated list, blanks trimmed', () => {
    expect(loadConfig({}).TRUSTED_PROXIES).toEqual(['127.0.0.0/8', '::1/128']);
    expect(loadConfig({ TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8 ,192.0.2.1' }).TRUSTED_PROXIES).toEqual(['10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
  });

  it.each([
    ['not an address', 'proxy.internal', /TRUSTED_PROXIES .*"proxy\.internal"/],
    ['a prefix too long', '10.0.0.0/33', /TRUSTED_PROXIES .*"10\.0\.0\.0\/33"/],
    ['an empty entry', '10.0.0.0/8,,::1', /TRUSTED_PROXIES .*empty entry/],
  ])('refuses %s, naming the variable and the entry', (_what, value, message) => {
    const found = problems(value);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });
});
