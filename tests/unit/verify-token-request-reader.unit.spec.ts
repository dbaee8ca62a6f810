/**
 * The fast path reads only the token of a VerifyTokenRequest (issue 16): whatever it returns
 * must be what fromBinary gives, and a body it cannot take must fail as fromBinary fails.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { VerifyTokenRequestSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { readVerifyToken } from '../../src/transport/connect/verify-token-request.reader.js';

const request = (token: string) => toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token }));
const fully = (bytes: Uint8Array) => fromBinary(VerifyTokenRequestSchema, bytes).token;

function outcome(read: () => string): string {
  try {
    return `token ${read()}`;
  } catch (error) {
    return `error ${(error as Error).message}`;
  }
}

describe('readVerifyToken', () => {
  it.each<[string, Uint8Array]>([
    ['a token', request('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')],
    ['no token (empty body)', new Uint8Array(0)],
    ['the token field twice: the last wins', new Uint8Array([...request('first'), ...request('second')])],
    ['an unknown field beside it', new BinaryWriter().tag(1, WireType.LengthDelimited).string('t').tag(7, WireType.Varint).uint32(3).finish()],
    ['the token as a varint', new BinaryWriter().tag(1, WireType.Varint).uint32(3).finish()],
    ['a token cut short', request('a token cut short').subarray(0, 6)],
    ['a token that is not UTF-8', Uint8Array.from([0x0a, 0x03, 0x61, 0xff, 0x62])],
    ['a byte-order mark first', request('\uFEFFtoken')],
  ])('reads %s as fromBinary does', (_case, bytes) => {
    expect(outcome(() => readVerifyToken(bytes))).toBe(outcome(() => fully(bytes)));
  });
});
