/**
 * VerifyToken's answer is encoded by hand on the fast path (issue 16): it must be toBinary's
 * output byte for byte, for every shape the answer takes.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { VerifyTokenResponseSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { encodeVerifyTokenResponse } from '../../src/transport/connect/verify-token-response.encoder.js';

const at = (ms: number) => timestampFromDate(new Date(ms));

describe('encodeVerifyTokenResponse', () => {
  it.each([
    ['a token with a session', { userId: '0190f3a4-5b6c-7d8e-9f00-112233445566', expiresAt: at(1_765_000_900_000), issuedAt: at(1_765_000_000_000), tokenId: 'b7c1e2d3-0000-4000-8000-000000000001', sessionId: '0190f3a4-0000-7000-8000-000000000002' }],
    ['a token without a session', { userId: 'u', expiresAt: at(1_765_000_900_123), issuedAt: at(1_765_000_000_999), tokenId: 'jti' }],
    ['timestamps at 0 and with nanos only', { userId: 'u', expiresAt: at(0), issuedAt: at(5), tokenId: 't' }],
    ['no timestamps, empty strings', {}],
    ['non-ASCII ids', { userId: 'ü-€-𝄞', tokenId: 'é'.repeat(200) }],
    ['a timestamp before 1970 (left to toBinary)', { userId: 'u', issuedAt: at(-1_500) }],
    ['far-future seconds', { userId: 'u', expiresAt: { seconds: 253_402_300_799n, nanos: 999_999_999 } }],
  ])('writes %s as toBinary does', (_case, init) => {
    const message = create(VerifyTokenResponseSchema, init);
    expect(Buffer.from(encodeVerifyTokenResponse(message))).toEqual(Buffer.from(toBinary(VerifyTokenResponseSchema, message)));
  });

  it('matches toBinary over a thousand random answers', () => {
    for (let i = 0; i < 1000; i++) {
      const ms = Math.floor(Math.random() * 4_000_000_000_000);
      const message = create(VerifyTokenResponseSchema, { userId: crypto.randomUUID(), expiresAt: at(ms + 900_000), issuedAt: at(ms), tokenId: crypto.randomUUID(), sessionId: i % 2 === 0 ? crypto.randomUUID() : '' });
      expect(Buffer.from(encodeVerifyTokenResponse(message))).toEqual(Buffer.from(toBinary(VerifyTokenResponseSchema, message)));
    }
  });
});
