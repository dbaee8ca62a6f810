/**
 * Baseline for VerifyToken: node:crypto ES256 signature checks in a loop on one thread, over
 * the same tokens the service is sent and the public key from its JWKS. No parsing, no
 * claims, no RPC: the cost floor of one verification on this machine. In its fastest form: the
 * signatures converted to DER before the loop and the bare KeyObject passed (the
 * `{ key, dsaEncoding: 'ieee-p1363' }` form costs 80 % more per check, see p1363-to-der).
 */
import { createPublicKey, verify } from 'node:crypto';
import type { JWK } from 'jose';
import { p1363ToDer } from '../../src/infrastructure/tokens/p1363-to-der.js';
import { serveParent } from '../lib/child-server.js';
import { nowMs } from '../lib/clock.js';

export interface RawVerifyParams {
  readonly jwk: JWK;
  readonly tokens: readonly string[];
  readonly warmupMs: number;
  readonly durationMs: number;
}

const CLOCK_CHECK_EVERY = 64;

serveParent({
  // The loop is synchronous on purpose; the handler must still return a promise.
  // eslint-disable-next-line @typescript-eslint/require-await
  async run({ jwk, tokens, warmupMs, durationMs }: RawVerifyParams) {
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const inputs = tokens.map((token) => {
      const last = token.lastIndexOf('.');
      return { data: Buffer.from(token.slice(0, last)), signature: p1363ToDer(Buffer.from(token.slice(last + 1), 'base64url')) };
    });
    const from = nowMs() + warmupMs;
    const to = from + durationMs;
    let count = 0;
    for (let i = 0; ; i++) {
      if (i % CLOCK_CHECK_EVERY === 0) {
        const now = nowMs();
        if (now >= to) break;
        if (now < from) count = 0;
      }
      const { data, signature } = inputs[i % inputs.length]!;
      if (!verify('sha256', data, key, signature)) throw new Error('a token did not verify');
      count++;
    }
    return { count, rate: count / (durationMs / 1000) };
  },
});
