/**
 * Baseline for VerifyToken: node:crypto ES256 signature checks in a loop on one thread, over
 * the same tokens the service is sent and the public key from its JWKS. No parsing, no
 * claims, no RPC: the cost floor of one verification on this machine.
 */
import { createPublicKey, verify } from 'node:crypto';
import type { JWK } from 'jose';
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
      return { data: Buffer.from(token.slice(0, last)), signature: Buffer.from(token.slice(last + 1), 'base64url') };
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
      if (!verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('a token did not verify');
      count++;
    }
    return { count, rate: count / (durationMs / 1000) };
  },
});
