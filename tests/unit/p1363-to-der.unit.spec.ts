/**
 * ES256 signatures reach OpenSSL in DER (issue 16: the `dsaEncoding` option costs more than the
 * check itself). The conversion must give what node:crypto itself accepts, for every shape of
 * r and s: leading zero bytes dropped, a zero byte added when the top bit is set.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { p1363ToDer } from '../../src/infrastructure/tokens/p1363-to-der.js';

describe('p1363ToDer', () => {
  it('gives DER signatures node:crypto verifies, for 200 random signatures', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`);
      const p1363 = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      expect(verify('sha256', data, publicKey, p1363ToDer(p1363))).toBe(true);
      expect(verify('sha256', Buffer.from(`other ${i}`), publicKey, p1363ToDer(p1363))).toBe(false);
    }
  });

  it('drops leading zeros and pads a set top bit, as DER requires', () => {
    const r = Buffer.alloc(32);
    r[31] = 1;
    const s = Buffer.alloc(32, 0xff);
    s[0] = 0x80;
    const der = p1363ToDer(Buffer.concat([r, s]));
    expect(der.subarray(0, 5)).toEqual(Buffer.from([0x30, 3 + 35, 0x02, 0x01, 0x01]));
    expect(der.subarray(5, 9)).toEqual(Buffer.from([0x02, 0x21, 0x00, 0x80]));
    expect(der.length).toBe(2 + 3 + 35);
  });
});
