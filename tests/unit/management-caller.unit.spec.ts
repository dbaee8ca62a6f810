import { describe, expect, it } from 'vitest';
import { pageToken } from '../../src/application/list-users-page.js';
import { forwardedClientUri, subjectAltNames } from '../../src/transport/connect/management-caller.js';

/** Issue 14: how the management port names its callers, and its page tokens. */
describe('subjectAltNames', () => {
  it('reads URI SANs first, then DNS SANs, and nothing else', () => {
    expect(subjectAltNames('DNS:ops.internal, URI:spiffe://cluster.local/ns/ops/sa/admin, IP Address:10.0.0.1, email:a@b.c')).toEqual([
      'spiffe://cluster.local/ns/ops/sa/admin',
      'ops.internal',
    ]);
    expect(subjectAltNames(undefined)).toEqual([]);
    expect(subjectAltNames('IP Address:127.0.0.1')).toEqual([]);
  });
});

describe('forwardedClientUri (x-forwarded-client-cert)', () => {
  it('takes the URI of the last element: the one the nearest proxy added', () => {
    expect(forwardedClientUri('By=spiffe://a;URI=spiffe://client-1,By=spiffe://b;Hash=abc;Subject="CN=x, O=y";URI=spiffe://client-2')).toBe('spiffe://client-2');
    expect(forwardedClientUri('Hash=abc;URI="spiffe://quoted;with,separators"')).toBe('spiffe://quoted;with,separators');
    expect(forwardedClientUri(['By=x;URI=spiffe://one', 'By=y;uri=spiffe://two'])).toBe('spiffe://two');
  });

  it('answers undefined without a URI', () => {
    expect(forwardedClientUri(undefined)).toBeUndefined();
    expect(forwardedClientUri('By=spiffe://a;Hash=abc')).toBeUndefined();
    expect(forwardedClientUri('URI=')).toBeUndefined();
  });
});

describe('ListUsers page tokens', () => {
  const filters = { status: undefined, emailKeyPrefix: 'ann' };
  const id = '0b5b3c1e-7f00-4e6f-9a55-3d1c2f4b8a01';

  it('round-trips, and binds the filters', () => {
    const token = pageToken.encode({ afterId: id, ...filters });
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(pageToken.decode(token, filters)).toEqual({ ok: true, value: id });
    expect(pageToken.decode(token, { ...filters, emailKeyPrefix: 'bob' }).ok).toBe(false);
    expect(pageToken.decode(token, { ...filters, status: 'active' }).ok).toBe(false);
    expect(pageToken.decode('', filters)).toEqual({ ok: true, value: undefined });
  });

  it.each([
    ['SQL', "' or 1=1 --"],
    ['not JSON', Buffer.from('hello').toString('base64url')],
    ['an id that is not a UUID', Buffer.from(JSON.stringify({ v: 1, a: "x' or '1'='1", s: '', p: 'ann' })).toString('base64url')],
    ['another version', Buffer.from(JSON.stringify({ v: 2, a: id, s: '', p: 'ann' })).toString('base64url')],
    ['JSON null', Buffer.from('null').toString('base64url')],
    ['too long', 'A'.repeat(2_000)],
  ])('refuses %s', (_name, token) => {
    expect(pageToken.decode(token, filters).ok).toBe(false);
  });
});
