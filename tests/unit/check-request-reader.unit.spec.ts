/**
 * The fast path reads a CheckRequest's HTTP headers only (issue 16). Whatever it returns, the
 * handler must see the same headers and header_map as a full fromBinary would give it, and a
 * body it cannot take must fail as fromBinary fails.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { readCheckRequest } from '../../src/transport/connect/check-request.reader.js';

const encoder = new TextEncoder();

/** What Envoy sends for a GET with a Bearer token: addresses, principals, time, a dozen headers. */
function envoyRequest(headers: Record<string, string>, headerMap?: { key: string; value?: string; rawValue?: Uint8Array }[]) {
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

const httpOf = (request: ReturnType<typeof readCheckRequest>) => request.attributes?.request?.http;

describe('readCheckRequest', () => {
  it('gives the handler the headers a full decode gives it', () => {
    const bytes = envoyRequest({ ':method': 'GET', authorization: 'Bearer abc.def.ghi', 'x-request-id': 'r-1', accept: '*/*' });
    const full = httpOf(fromBinary(CheckRequestSchema, bytes));
    const read = httpOf(readCheckRequest(bytes));
    expect(read?.headers).toEqual(full?.headers);
    expect(read?.headers['authorization']).toBe('Bearer abc.def.ghi');
    expect(read?.headerMap).toBeUndefined();
  });

  it('reads header_map (encode_raw_headers), values and raw values, in order', () => {
    const headerMap = [{ key: 'authorization', rawValue: encoder.encode('Bearer raw.token.here') }, { key: 'accept', value: '*/*' }];
    const bytes = envoyRequest({}, headerMap);
    const full = httpOf(fromBinary(CheckRequestSchema, bytes));
    const read = httpOf(readCheckRequest(bytes));
    expect(read?.headerMap?.headers.map(({ key, value, rawValue }) => ({ key, value, rawValue }))).toEqual(full?.headerMap?.headers.map(({ key, value, rawValue }) => ({ key, value, rawValue })));
  });

  it('merges a repeated attributes field as protobuf does: the later map entry wins', () => {
    const bytes = new Uint8Array([...envoyRequest({ authorization: 'Bearer first', accept: '*/*' }), ...envoyRequest({ authorization: 'Bearer second' })]);
    expect(httpOf(readCheckRequest(bytes))?.headers).toEqual(httpOf(fromBinary(CheckRequestSchema, bytes))?.headers);
    expect(httpOf(readCheckRequest(bytes))?.headers['authorization']).toBe('Bearer second');
  });

  it('a header named __proto__, and headers with header_map together, as a full decode gives them', () => {
    // An own key named __proto__ (an object literal would set the prototype instead).
    const bytes = envoyRequest(Object.fromEntries([['__proto__', 'x'], ['authorization', 'Bearer t']]), [{ key: 'authorization', value: 'Bearer raw' }]);
    const full = httpOf(fromBinary(CheckRequestSchema, bytes));
    const read = httpOf(readCheckRequest(bytes));
    expect(Object.entries(full?.headers ?? {})).toContainEqual(['__proto__', 'x']);
    expect(Object.entries(read?.headers ?? {})).toEqual(Object.entries(full?.headers ?? {}));
    expect(read?.headerMap?.headers.map((header) => header.value)).toEqual(['Bearer raw']);
  });

  it('refuses invalid UTF-8 in a header it reads exactly as fromBinary does', () => {
    const good = envoyRequest({ authorization: 'Bearer t', 'user-agent': 'cafX' });
    const bad = Uint8Array.from(good);
    bad[Buffer.from(good).indexOf('cafX') + 3] = 0xe9;
    const full = captured(() => fromBinary(CheckRequestSchema, bad));
    expect(full).toBeDefined();
    expect(() => readCheckRequest(bad)).toThrow(full);
  });

  it('keeps presence: no attributes, and attributes without a request', () => {
    expect(readCheckRequest(new Uint8Array(0)).attributes).toBeUndefined();
    const noRequest = toBinary(CheckRequestSchema, create(CheckRequestSchema, { attributes: { destination: { principal: 'p' } } }));
    expect(readCheckRequest(noRequest).attributes).toBeDefined();
    expect(readCheckRequest(noRequest).attributes?.request).toBeUndefined();
  });

  it('fails as fromBinary fails on a body cut short, and decodes in full a field with an unexpected wire type', () => {
    const cut = envoyRequest({ authorization: 'Bearer x' }).subarray(0, 40);
    expect(() => readCheckRequest(cut)).toThrow(captured(() => fromBinary(CheckRequestSchema, cut)));
    // attributes as a varint: not a message, so the full decoder decides.
    const odd = new BinaryWriter().tag(1, WireType.Varint).uint32(7).finish();
    const full = captured(() => fromBinary(CheckRequestSchema, odd));
    if (full === undefined) expect(readCheckRequest(odd)).toEqual(fromBinary(CheckRequestSchema, odd));
    else expect(() => readCheckRequest(odd)).toThrow(full);
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
