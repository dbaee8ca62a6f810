/**
 * The fast path reads only a CheckRequest's Authorization header (issue 16). Whatever it
 * returns must be what authorizationHeader gives from a full fromBinary, and a body it cannot
 * take must fail as fromBinary fails.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { readCheckAuthorization } from '../../src/transport/connect/check-request.reader.js';
import { authorizationHeader } from '../../src/transport/connect/ext-authz.service.js';

const encoder = new TextEncoder();

type HeaderMapEntry = { key: string; value?: string; rawValue?: Uint8Array };

/** What Envoy sends for a GET with a Bearer token: addresses, principals, time, a dozen headers. */
function envoyRequest(headers: Record<string, string>, headerMap?: HeaderMapEntry[]) {
  return toBinary(
    CheckRequestSchema,
    create(CheckRequestSchema, {
      attributes: {
        source: { address: { address: { case: 'socketAddress', value: { address: '10.244.1.17', portSpecifier: { case: 'portValue', value: 47_612 } } } }, principal: 'spiffe://cluster.local/ns/shop/sa/frontend' },
        destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
        contextExtensions: { tier: 'gold' },
        request: {
          time: { seconds: 1_700_000_000n, nanos: 5 },
          http: { id: 'r-1', method: 'GET', path: '/orders/42', host: 'orders', scheme: 'http', protocol: 'HTTP/1.1', size: -1n, headers, ...(headerMap && { headerMap: { headers: headerMap } }) },
        },
      },
    }),
  );
}

/** The Authorization header as the Connect path finds it: full decode, then authorizationHeader. */
const fully = (bytes: Uint8Array) => authorizationHeader(fromBinary(CheckRequestSchema, bytes).attributes?.request?.http);

describe('readCheckAuthorization', () => {
  it('finds the Authorization header a full decode finds, among the others', () => {
    const bytes = envoyRequest({ ':method': 'GET', authorization: 'Bearer abc.def.ghi', 'x-request-id': 'r-1', accept: '*/*' });
    expect(readCheckAuthorization(bytes)).toBe('Bearer abc.def.ghi');
    expect(readCheckAuthorization(bytes)).toBe(fully(bytes));
  });

  it('matches the key in headers exactly (Envoy lower-cases it): another case is no header', () => {
    const bytes = envoyRequest({ Authorization: 'Bearer upper', 'authorization-x': 'Bearer longer', authorizatio: 'Bearer shorter' });
    expect(readCheckAuthorization(bytes)).toBeUndefined();
    expect(fully(bytes)).toBeUndefined();
  });

  it.each<[string, HeaderMapEntry[]]>([
    ['a raw value', [{ key: 'authorization', rawValue: encoder.encode('Bearer raw.token.here') }, { key: 'accept', value: '*/*' }]],
    ['a string value', [{ key: 'authorization', value: 'Bearer string.value' }]],
    ['a key in another case, and two values joined', [{ key: 'Authorization', value: 'Bearer a' }, { key: 'AUTHORIZATION', rawValue: encoder.encode('Bearer b') }]],
    ['a raw value that is not UTF-8 (decoded with replacement)', [{ key: 'authorization', rawValue: Uint8Array.from([0x42, 0xff, 0x43]) }]],
    ['an empty raw value beside a string value', [{ key: 'authorization', value: 'Bearer v', rawValue: new Uint8Array(0) }]],
    ['no authorization entry', [{ key: 'accept', value: '*/*' }]],
  ])('reads header_map (encode_raw_headers): %s', (_case, headerMap) => {
    const bytes = envoyRequest({}, headerMap);
    expect(readCheckAuthorization(bytes)).toBe(fully(bytes));
  });

  it('keeps a leading byte-order mark in a value, as fromBinary does', () => {
    const bytes = envoyRequest({ authorization: '\uFEFFBearer abc' });
    expect(readCheckAuthorization(bytes)).toBe('\uFEFFBearer abc');
    const mapped = envoyRequest({}, [{ key: 'authorization', value: 'Bearer a' }, { key: 'authorization', value: '\uFEFFb' }]);
    expect(readCheckAuthorization(mapped)).toBe(fully(mapped));
  });

  it('prefers headers to header_map, as authorizationHeader does', () => {
    const bytes = envoyRequest({ authorization: 'Bearer t' }, [{ key: 'authorization', value: 'Bearer raw' }]);
    expect(readCheckAuthorization(bytes)).toBe('Bearer t');
    expect(readCheckAuthorization(bytes)).toBe(fully(bytes));
  });

  it('merges a repeated attributes field as protobuf does: the later map entry wins, header_map entries add up', () => {
    const twice = new Uint8Array([...envoyRequest({ authorization: 'Bearer first', accept: '*/*' }), ...envoyRequest({ authorization: 'Bearer second' })]);
    expect(readCheckAuthorization(twice)).toBe('Bearer second');
    expect(readCheckAuthorization(twice)).toBe(fully(twice));
    const maps = new Uint8Array([...envoyRequest({}, [{ key: 'authorization', value: 'Bearer one' }]), ...envoyRequest({}, [{ key: 'authorization', value: 'Bearer two' }])]);
    expect(readCheckAuthorization(maps)).toBe('Bearer one,Bearer two');
    expect(readCheckAuthorization(maps)).toBe(fully(maps));
  });

  it('refuses invalid UTF-8 in any header key or value exactly as fromBinary does', () => {
    for (const [headers, spot] of [
      [{ authorization: 'Bearer t', 'user-agent': 'cafX' }, 'cafX'],
      [{ authorization: 'Bearer t', 'x-cafX': 'v' }, 'cafX'],
      [{ authorization: 'Bearer tX' }, 'tX'],
    ] as const) {
      const good = envoyRequest(headers);
      const bad = Uint8Array.from(good);
      bad[Buffer.from(good).indexOf(spot) + spot.length - 1] = 0xe9;
      const full = captured(() => fromBinary(CheckRequestSchema, bad));
      expect(full).toBeDefined();
      expect(() => readCheckAuthorization(bad)).toThrow(full);
    }
  });

  it('skips fields it does not read of every wire type, as a full decode does', () => {
    const http = new BinaryWriter()
      .tag(3, WireType.LengthDelimited)
      .fork()
      .tag(1, WireType.LengthDelimited)
      .string('authorization')
      .tag(2, WireType.LengthDelimited)
      .string('Bearer t')
      .join()
      .tag(90, WireType.Bit32)
      .fixed32(7)
      .tag(91, WireType.Bit64)
      .fixed64(8n)
      .tag(92, WireType.Varint)
      .int64(-1n)
      .tag(93, WireType.LengthDelimited)
      .bytes(new Uint8Array([1, 2, 3]))
      .finish();
    const request = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(http).finish();
    const attributes = new BinaryWriter().tag(4, WireType.LengthDelimited).bytes(request).finish();
    const bytes = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(attributes).finish();
    expect(readCheckAuthorization(bytes)).toBe('Bearer t');
    expect(readCheckAuthorization(bytes)).toBe(fully(bytes));
  });

  it('finds nothing without attributes, a request or headers', () => {
    expect(readCheckAuthorization(new Uint8Array(0))).toBeUndefined();
    const noRequest = toBinary(CheckRequestSchema, create(CheckRequestSchema, { attributes: { destination: { principal: 'p' } } }));
    expect(readCheckAuthorization(noRequest)).toBeUndefined();
  });

  it('fails as fromBinary fails on a body cut short, and decodes in full a field with an unexpected wire type', () => {
    const cut = envoyRequest({ authorization: 'Bearer x' }).subarray(0, 40);
    expect(() => readCheckAuthorization(cut)).toThrow(captured(() => fromBinary(CheckRequestSchema, cut)));
    // attributes as a varint: not a message, so the full decoder decides.
    const odd = new BinaryWriter().tag(1, WireType.Varint).uint32(7).finish();
    const full = captured(() => fromBinary(CheckRequestSchema, odd));
    if (full === undefined) expect(readCheckAuthorization(odd)).toBe(fully(odd));
    else expect(() => readCheckAuthorization(odd)).toThrow(full);
  });
});

function captured(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
