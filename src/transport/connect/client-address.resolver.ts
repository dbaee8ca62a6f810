import type { IncomingMessage } from 'node:http';
import { isIP, SocketAddress } from 'node:net';
import proxyaddr from 'proxy-addr';

/** Used when the socket is already gone and Node no longer knows the peer. */
export const UNKNOWN_CLIENT = 'unknown';

/** Finds the client address of a request from its peer address and x-forwarded-for header. */
export type ClientAddressResolver = (peer: string | undefined, forwardedFor: string | readonly string[] | undefined) => string;

/**
 * `trustedProxies` undefined: the peer is the client and the header is ignored. Otherwise the
 * walk is proxy-addr's (the library behind Express's `trust proxy`): from the peer leftwards
 * through x-forwarded-for, past every address inside `trustedProxies`, stopping at the first
 * one outside. So an untrusted peer's header is never read, and a client behind our proxies
 * can only prepend entries the walk never reaches.
 *
 * Where proxy-addr would answer an entry that is not an IP address (Express's `req.ip` can be
 * any text), this answers the trusted hop that passed it on: a throttle key must be bounded
 * and must not change with text a client chose.
 */
export function clientAddressResolver(trustedProxies: readonly string[] | undefined): ClientAddressResolver {
  if (trustedProxies === undefined) return (peer) => canonicalAddress(peer) ?? UNKNOWN_CLIENT;
  const trust = proxyaddr.compile([...trustedProxies]);
  return (peer, forwardedFor) => {
    if (peer === undefined) return UNKNOWN_CLIENT;
    const header = typeof forwardedFor === 'string' ? forwardedFor : forwardedFor?.join(',');
    // proxy-addr reads only these two fields of a request.
    const request = { headers: { 'x-forwarded-for': header }, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
    const chain = proxyaddr.all(request, trust);
    for (let i = chain.length - 1; i >= 0; i--) {
      const address = canonicalAddress(chain[i]);
      if (address !== undefined) return address;
    }
    return UNKNOWN_CLIENT;
  };
}

const MAPPED_IPV4 = '::ffff:';

/**
 * One spelling per address (`2001:DB8:0::1` and `2001:db8::1`, `::ffff:192.0.2.1` and
 * `192.0.2.1` count as one client), at most 45 characters (an IPv6 address with an embedded
 * IPv4 one); undefined for anything that is not an IP address. Runs on every call, so the
 * common shapes (IPv4, and IPv4-mapped peers of a dual-stack listener) skip the native
 * round trip, which costs ~50 times a regular expression.
 */
export function canonicalAddress(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const family = isIP(text);
  // Node's isIP takes dotted decimal without leading zeros only: already the one spelling.
  if (family === 4) return text;
  if (family === 0) return undefined;
  return mappedIpv4(text) ?? mappedIpv4OrSelf(inetNtop(text));
}

const mappedIpv4 = (text: string): string | undefined => {
  const ipv4 = text.startsWith(MAPPED_IPV4) ? text.slice(MAPPED_IPV4.length) : undefined;
  return ipv4 !== undefined && isIP(ipv4) === 4 ? ipv4 : undefined;
};
const mappedIpv4OrSelf = (ipv6: string | undefined) => (ipv6 === undefined ? undefined : (mappedIpv4(ipv6) ?? ipv6));

/** inet_ntop's form of an IPv6 address; it also drops a zone id (`%eth0`), which has no length limit. */
function inetNtop(text: string): string | undefined {
  try {
    return new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    // isIP's grammar and inet_pton's agree as far as we know; if they ever do not, not an address.
    return undefined;
  }
}
