import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidTokenError, type TokenFailureReason } from '../../src/domain/identity/identity.errors.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import type { KeyRing, LoadedKey } from '../../src/infrastructure/tokens/key-ring.js';
import { JwtSigner } from '../../src/infrastructure/tokens/jwt-signer.js';
import { JwtTokenProvider } from '../../src/infrastructure/tokens/jwt-token-provider.js';
import { JwtVerifier } from '../../src/infrastructure/tokens/jwt-verifier.js';
import { hasHighS, withLowS } from '../../src/infrastructure/tokens/p256-low-s.js';
import type { SigningAlgorithm } from '../../src/infrastructure/tokens/signing-key.store.js';

/**
 * One token, one spelling. Node's base64url decoder takes padding, `+`/`/` and non-zero
 * unused bits in the last character, and an ECDSA signature (r, s) has a twin (r, n − s):
 * without the checks every token had 8 or more spellings that verified, each its own cache
 * entry and a way around any deny-list keyed on the token string.
 */

const ISSUER = 'identity-service';
const AUDIENCE = 'internal-services';
const NOW = new Date('2026-05-01T10:00:00.000Z');
/** n of P-256. */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const userId = UserId.generate().value;
const signer = new JwtSigner({ issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 3600 });
const keys = new Map<string, LoadedKey>();
const verifier = new JwtVerifier({ algorithms: ['ES256', 'EdDSA'], issuer: ISSUER, audience: AUDIENCE, clockSkewSeconds: 30, findKey: (kid) => keys.get(kid) });

async function makeKey(alg: SigningAlgorithm): Promise<LoadedKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, alg, publicKey: createPublicKey({ key: jwk, format: 'jwk' }), jwk: { ...jwk, kid, alg }, privateKey, activatesAt: new Date(0), retiresAt: null, removesAt: null };
}

let es256: LoadedKey;
let ed25519: LoadedKey;

beforeAll(async () => {
  es256 = await makeKey('ES256');
  ed25519 = await makeKey('EdDSA');
  for (const key of [es256, ed25519]) keys.set(key.kid, key);
});

function reasonOf(token: string): TokenFailureReason | 'accepted' {
  try {
    verifier.verify(token, NOW);
    return 'accepted';
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTokenError);
    return (error as InvalidTokenError).reason;
  }
}

/**
 * The other spellings of one base64url part that decode to the same bytes: the last
 * character with its unused low bits set otherwise (4 bits when length % 4 is 2, 2 bits when
 * it is 3, none when 0).
 */
function trailingBitTwins(part: string): string[] {
  const unusedBits = { 0: 0, 2: 4, 3: 2 }[part.length % 4 as 0 | 2 | 3];
  const last = ALPHABET.indexOf(part.at(-1)!);
  const twins = [];
  for (let low = 1; low < 2 ** unusedBits; low++) twins.push(part.slice(0, -1) + ALPHABET[last ^ low]!);
  return twins;
}

const replacePart = (token: string, index: number, part: string) => token.split('.').map((p, i) => (i === index ? part : p)).join('.');

/**
 * A token whose part `index` has unused trailing bits, so it has twins. The header and the
 * claims have fixed lengths today (so the first token does); should that change to a multiple
 * of 3 bytes, this says so instead of the test passing on nothing.
 */
async function tokenWithUnusedBits(key: LoadedKey, index: number): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { token } = await signer.sign(userId, key, NOW);
    if (token.split('.')[index]!.length % 4 !== 0) return token;
  }
  throw new Error(`part ${index} of ${key.alg} tokens has no unused bits: pad a claim to test it`);
}

describe.each(['ES256', 'EdDSA'] as const)('%s: only the canonical base64url spelling verifies', (alg) => {
  const key = () => (alg === 'ES256' ? es256 : ed25519);

  it.each([
    [0, 'header'],
    [1, 'payload'],
    [2, 'signature'],
  ])('part %i (%s): every trailing-bit twin is refused as malformed, the original verifies', async (index) => {
    const token = await tokenWithUnusedBits(key(), index);
    const twins = trailingBitTwins(token.split('.')[index]!);
    expect(twins.length).toBeGreaterThanOrEqual(3);
    for (const twin of twins) {
      const variant = replacePart(token, index, twin);
      // Same bytes: this is exactly the malleability, not some other damage.
      expect(Buffer.from(twin, 'base64url')).toEqual(Buffer.from(token.split('.')[index]!, 'base64url'));
      expect(reasonOf(variant), variant).toBe('malformed');
    }
    expect(reasonOf(token)).toBe('accepted');
  });

  it('padding, and the base64 (not url) alphabet, are refused', async () => {
    const token = await tokenWithUnusedBits(key(), 2);
    const signature = token.split('.')[2]!;
    const padded = signature + '='.repeat(4 - (signature.length % 4));
    expect(reasonOf(replacePart(token, 2, padded))).toBe('malformed');
    const standard = Buffer.from(signature, 'base64url').toString('base64').replace(/=+$/, '');
    if (standard !== signature) expect(reasonOf(replacePart(token, 2, standard))).toBe('malformed');
    expect(reasonOf(replacePart(token, 2, `${signature.slice(0, 10)}+${signature.slice(11)}`))).toBe('malformed');
    expect(reasonOf(token)).toBe('accepted');
  });

  it('a part one character too long for any byte count (length % 4 = 1) is refused', async () => {
    const token = (await signer.sign(userId, key(), NOW)).token;
    const signature = token.split('.')[2]!;
    const broken = signature.length % 4 === 0 ? `${signature}A` : signature.length % 4 === 2 ? `${signature}AAA` : `${signature}AA`;
    expect(broken.length % 4).toBe(1);
    expect(reasonOf(replacePart(token, 2, broken))).toBe('malformed');
  });
});

describe('ES256: only the low-S signature verifies', () => {
  const sOf = (signature: Buffer) => BigInt(`0x${signature.subarray(32).toString('hex')}`);
  const withS = (signature: Buffer, s: bigint) => Buffer.concat([signature.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);

  it('the signer always emits low S (WebCrypto picks either at random)', async () => {
    for (let i = 0; i < 40; i++) {
      const { token } = await signer.sign(userId, es256, NOW);
      const signature = Buffer.from(token.split('.')[2]!, 'base64url');
      expect(sOf(signature) <= N / 2n).toBe(true);
      expect(hasHighS(signature)).toBe(false);
    }
  });

  it('the high-S twin (r, n − s) is refused as a bad signature while the original verifies', async () => {
    const { token } = await signer.sign(userId, es256, NOW);
    const signature = Buffer.from(token.split('.')[2]!, 'base64url');
    const twin = withS(signature, N - sOf(signature));
    expect(hasHighS(twin)).toBe(true);
    // It is a valid ECDSA signature: plain node:crypto accepts it.
    const input = Buffer.from(token.split('.').slice(0, 2).join('.'));
    expect(nodeVerify('sha256', input, { key: es256.publicKey, dsaEncoding: 'ieee-p1363' }, twin)).toBe(true);
    expect(reasonOf(replacePart(token, 2, twin.toString('base64url')))).toBe('signature');
    expect(reasonOf(token)).toBe('accepted');
  });

  it('withLowS turns a high-S signature into the accepted one and leaves a low-S one alone', async () => {
    const nodeKey = createPrivateKey({ key: (await exportJWK(es256.privateKey!)), format: 'jwk' });
    const { token } = await signer.sign(userId, es256, NOW);
    const input = token.split('.').slice(0, 2).join('.');
    let sawHigh = false;
    for (let i = 0; i < 40; i++) {
      const raw = nodeSign('sha256', Buffer.from(input), { key: nodeKey, dsaEncoding: 'ieee-p1363' });
      sawHigh ||= hasHighS(raw);
      const low = Buffer.from(withLowS(raw));
      expect(hasHighS(low)).toBe(false);
      expect(reasonOf(`${input}.${low.toString('base64url')}`)).toBe('accepted');
      expect(reasonOf(`${input}.${raw.toString('base64url')}`)).toBe(hasHighS(raw) ? 'signature' : 'accepted');
    }
    expect(sawHigh).toBe(true); // P(no high S in 40 signatures) = 2^-40
  });

  it('the boundary: s = n/2 (rounded down) is low, one more is high', () => {
    const signature = Buffer.alloc(64, 1);
    expect(hasHighS(withS(signature, N / 2n))).toBe(false);
    expect(hasHighS(withS(signature, N / 2n + 1n))).toBe(true);
    expect(hasHighS(withS(signature, 1n))).toBe(false);
    expect(hasHighS(withS(signature, N - 1n))).toBe(true);
  });
});

describe('the cache does not launder a twin', () => {
  it('after the original is verified and cached, its twins are still refused', async () => {
    const ring = { signingKey: () => es256, publishedKey: (kid: string) => keys.get(kid) } as unknown as KeyRing;
    const metrics = createMetrics();
    const provider = new JwtTokenProvider({
      keys: ring,
      signer,
      verifier,
      clock: { now: () => NOW },
      logger: pino({ level: 'silent' }),
      metrics,
      cacheSize: 100,
      clockSkewSeconds: 30,
    });
    const token = await tokenWithUnusedBits(es256, 2);
    await provider.verify(token);
    await provider.verify(token);
    for (const twin of trailingBitTwins(token.split('.')[2]!)) {
      await expect(provider.verify(replacePart(token, 2, twin))).rejects.toBeInstanceOf(InvalidTokenError);
    }
    const refused = await metrics.registry.getSingleMetricAsString('token_verify_failures_total');
    expect(refused).toContain('token_verify_failures_total{reason="malformed"} 15');
  });
});
