import { createPrivateKey, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from 'jose';
import { pino } from 'pino';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { VerifiedToken } from '../../src/application/ports/token-provider.port.js';
import { VerifyToken } from '../../src/application/use-cases/verify-token.use-case.js';
import { InvalidArgumentError, InvalidTokenError, TokenFailureReason } from '../../src/domain/identity/identity.errors.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import type { KeyRing, LoadedKey } from '../../src/infrastructure/tokens/key-ring.js';
import { JwtSigner } from '../../src/infrastructure/tokens/jwt-signer.js';
import { JwtTokenProvider } from '../../src/infrastructure/tokens/jwt-token-provider.js';
import { toConnectError } from '../../src/transport/connect/error-mapper.js';
import { ServiceUnavailableError } from '../../src/application/application.errors.js';
import { Code } from '@connectrpc/connect';
import { JwtVerifier, MAX_TOKEN_BYTES } from '../../src/infrastructure/tokens/jwt-verifier.js';
import { withLowS } from '../../src/infrastructure/tokens/p256-low-s.js';
import type { SigningAlgorithm } from '../../src/infrastructure/tokens/signing-key.store.js';

const ISSUER = 'identity-service';
const AUDIENCE = 'internal-services';
const TTL = 3600;
const SKEW = 30;

interface TestKey extends LoadedKey {
  /** The same private key as a node:crypto KeyObject, to sign hand-made tokens. */
  readonly nodePrivateKey: KeyObject;
}

/** A LoadedKey as the key ring would hold it, without the key ring. */
async function makeKey(alg: SigningAlgorithm, kidOverride?: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = kidOverride ?? (await calculateJwkThumbprint(jwk, 'sha256'));
  return {
    kid,
    alg,
    publicKey: createPublicKey({ key: jwk, format: 'jwk' }),
    jwk: { ...jwk, kid, alg, use: 'sig' },
    privateKey,
    nodePrivateKey: createPrivateKey({ key: await exportJWK(privateKey), format: 'jwk' }),
    activatesAt: new Date(0),
    retiresAt: null,
    removesAt: null,
  };
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs any header and payload with node:crypto, so tests can make tokens jose would refuse to make. */
function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, key: TestKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature =
    key.alg === 'ES256'
      ? Buffer.from(withLowS(nodeSign('sha256', Buffer.from(input), { key: key.nodePrivateKey, dsaEncoding: 'ieee-p1363' })))
      : nodeSign(null, Buffer.from(input), key.nodePrivateKey);
  return `${input}.${signature.toString('base64url')}`;
}

const NOW = new Date('2026-05-01T10:00:00.000Z');
const NOW_S = NOW.getTime() / 1000;
const userId = UserId.generate().value;

const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  aud: AUDIENCE,
  sub: userId,
  iat: NOW_S,
  nbf: NOW_S,
  exp: NOW_S + TTL,
  jti: 'c5d1b0a6-4c1e-4f4b-9a53-3f2f1f8f5a10',
  ...overrides,
});

let es256: TestKey;
let es256Other: TestKey;
let ed25519: TestKey;
let keys: Map<string, TestKey>;
const signer = new JwtSigner({ issuer: ISSUER, audience: AUDIENCE, ttlSeconds: TTL });

const verifierFor = (options: Partial<ConstructorParameters<typeof JwtVerifier>[0]> = {}) =>
  new JwtVerifier({
    algorithms: ['ES256', 'EdDSA'],
    issuer: ISSUER,
    audience: AUDIENCE,
    clockSkewSeconds: SKEW,
    findKey: (kid) => keys.get(kid),
    ...options,
  });

function reasonOf(run: () => unknown): TokenFailureReason {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTokenError);
    const invalid = error as InvalidTokenError;
    expect(invalid.message).toBe('invalid token'); // nothing that helps an attacker
    return invalid.reason;
  }
  throw new Error('expected the token to be refused');
}

beforeAll(async () => {
  es256 = await makeKey('ES256');
  es256Other = await makeKey('ES256');
  ed25519 = await makeKey('EdDSA');
  keys = new Map([es256, es256Other, ed25519].map((key) => [key.kid, key]));
});

describe('sign and verify round trip', () => {
  it.each(['ES256', 'EdDSA'] as const)('%s: the verifier returns what the signer issued', async (alg) => {
    const key = alg === 'ES256' ? es256 : ed25519;
    const issued = await signer.sign(userId, key, NOW);
    const verified = verifierFor().verify(issued.token, NOW);
    expect(verified).toEqual({ kid: key.kid, userId, tokenId: issued.tokenId, issuedAt: issued.issuedAt, expiresAt: issued.expiresAt });
    expect(issued.expiresAt.getTime() - issued.issuedAt.getTime()).toBe(TTL * 1000);
    expect(issued.issuedAt).toEqual(NOW);
  });

  it('puts alg, the RFC 7638 thumbprint as kid, and typ JWT in the header', async () => {
    const issued = await signer.sign(userId, es256, NOW);
    const header = decodeProtectedHeader(issued.token);
    expect(header).toEqual({ alg: 'ES256', kid: await calculateJwkThumbprint(es256.jwk, 'sha256'), typ: 'JWT' });
  });

  it('carries exactly the contract claims: iss, aud (a string), sub, iat, nbf, exp, jti', async () => {
    const issued = await signer.sign(userId, es256, NOW);
    const payload = decodeJwt(issued.token);
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub']);
    expect(payload).toEqual({ iss: ISSUER, aud: AUDIENCE, sub: userId, iat: NOW_S, nbf: NOW_S, exp: NOW_S + TTL, jti: issued.tokenId });
    expect(UserId.isValid(issued.tokenId)).toBe(true);
  });

  it('gives every token its own jti', async () => {
    const [a, b] = await Promise.all([signer.sign(userId, es256, NOW), signer.sign(userId, es256, NOW)]);
    expect(a.tokenId).not.toBe(b.tokenId);
    expect(a.token).not.toBe(b.token);
  });

  it('uses whole seconds: a sub-second clock rounds iat down', async () => {
    const issued = await signer.sign(userId, es256, new Date(NOW.getTime() + 999));
    expect(decodeJwt(issued.token).iat).toBe(NOW_S);
    expect(issued.issuedAt).toEqual(NOW);
  });

  it.each(['ES256', 'EdDSA'] as const)('%s: a standard JWT library verifies the token with the published JWK (as a mesh sidecar would)', async (alg) => {
    const key = alg === 'ES256' ? es256 : ed25519;
    const issued = await signer.sign(userId, key, NOW);
    const { payload } = await jwtVerify(issued.token, await importJWK(key.jwk, alg), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: [alg],
      currentDate: NOW,
    });
    expect(payload.sub).toBe(userId);
  });

  it('refuses to sign with a key that has no private key loaded', async () => {
    const { privateKey: _omit, ...publicOnly } = es256;
    await expect(signer.sign(userId, publicOnly, NOW)).rejects.toThrow(/no private key/);
  });

  it('hand-made tokens with valid claims verify (the helper is sound)', () => {
    expect(verifierFor().verify(signRaw({ alg: 'ES256', kid: es256.kid }, claims(), es256), NOW).userId).toBe(userId);
    expect(verifierFor().verify(signRaw({ alg: 'EdDSA', kid: ed25519.kid }, claims(), ed25519), NOW).userId).toBe(userId);
  });
});

describe('refused tokens and their reasons', () => {
  let token: string;
  beforeAll(async () => {
    token = (await signer.sign(userId, es256, NOW)).token;
  });

  const parts = () => token.split('.') as [string, string, string];

  it('a tampered payload (another sub, same signature) → signature', () => {
    const [header, , signature] = parts();
    const forged = `${header}.${b64(claims({ sub: UserId.generate().value }))}.${signature}`;
    expect(reasonOf(() => verifierFor().verify(forged, NOW))).toBe('signature');
  });

  it('a tampered payload (later exp) → signature', () => {
    const [header, payload, signature] = parts();
    const original = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${b64({ ...original, exp: NOW_S + 10 * TTL })}.${signature}`;
    expect(reasonOf(() => verifierFor().verify(forged, NOW))).toBe('signature');
  });

  it('a tampered header (same alg and kid, extra member) → signature', () => {
    const [, payload, signature] = parts();
    const forged = `${b64({ alg: 'ES256', kid: es256.kid, typ: 'JWT', x: 1 })}.${payload}.${signature}`;
    expect(reasonOf(() => verifierFor().verify(forged, NOW))).toBe('signature');
  });

  it('a tampered signature → signature', () => {
    const [header, payload, signature] = parts();
    const bytes = Buffer.from(signature, 'base64url');
    bytes[10] = bytes[10]! ^ 0x01;
    expect(reasonOf(() => verifierFor().verify(`${header}.${payload}.${bytes.toString('base64url')}`, NOW))).toBe('signature');
  });

  it('a signature of the wrong length (e.g. DER-encoded ES256) → signature', () => {
    const [header, payload] = parts();
    const der = nodeSign('sha256', Buffer.from(`${header}.${payload}`), es256.nodePrivateKey); // DER by default
    expect(der.length).not.toBe(64);
    expect(reasonOf(() => verifierFor().verify(`${header}.${payload}.${der.toString('base64url')}`, NOW))).toBe('signature');
  });

  it('a token signed by another key that claims this key\'s kid → signature', async () => {
    const impostor = await makeKey('ES256', es256.kid);
    const forged = (await signer.sign(userId, impostor, NOW)).token;
    expect(decodeProtectedHeader(forged).kid).toBe(es256.kid);
    expect(reasonOf(() => verifierFor().verify(forged, NOW))).toBe('signature');
  });

  it('an unknown kid → unknown_key', async () => {
    const stranger = await makeKey('ES256');
    const foreign = (await signer.sign(userId, stranger, NOW)).token;
    expect(reasonOf(() => verifierFor().verify(foreign, NOW))).toBe('unknown_key');
  });

  it('a key no longer found (e.g. removed from the ring) → unknown_key', () => {
    expect(reasonOf(() => verifierFor({ findKey: () => undefined }).verify(token, NOW))).toBe('unknown_key');
  });

  it('verifyInPool (the signature on the thread pool) decides as verify does: accepted, forged, tampered, DER, EdDSA', async () => {
    const [header, payload, signature] = parts();
    const tampered = Buffer.from(signature, 'base64url');
    tampered[40] = tampered[40]! ^ 0x01;
    const der = nodeSign('sha256', Buffer.from(`${header}.${payload}`), es256.nodePrivateKey);
    const impostor = (await signer.sign(userId, await makeKey('ES256', es256.kid), NOW)).token;
    const eddsa = signRaw({ alg: 'EdDSA', kid: ed25519.kid }, claims(), ed25519);
    const cases = [
      token,
      eddsa,
      impostor,
      `${header}.${b64(claims({ sub: UserId.generate().value }))}.${signature}`,
      `${header}.${payload}.${tampered.toString('base64url')}`,
      `${header}.${payload}.${der.toString('base64url')}`,
    ];
    const outcome = (run: () => unknown) => {
      try {
        return (run() as { userId: string }).userId;
      } catch (error) {
        return (error as InvalidTokenError).reason;
      }
    };
    const sync = cases.map((item) => outcome(() => verifierFor().verify(item, NOW)));
    const pooled = await Promise.all(cases.map((item) => verifierFor().verifyInPool(item, NOW).then((verified) => verified.userId, (error: InvalidTokenError) => error.reason)));
    expect(pooled).toEqual(sync);
    expect(sync).toEqual([userId, userId, 'signature', 'signature', 'signature', 'signature']);
  });

  describe('algorithms', () => {
    it('alg none with an empty signature → algorithm', () => {
      const [, payload] = parts();
      const unsigned = `${b64({ alg: 'none', kid: es256.kid })}.${payload}.`;
      expect(reasonOf(() => verifierFor().verify(unsigned, NOW))).toBe('algorithm');
    });

    it('alg none with some signature bytes → algorithm', () => {
      const [, payload, signature] = parts();
      expect(reasonOf(() => verifierFor().verify(`${b64({ alg: 'none', kid: es256.kid })}.${payload}.${signature}`, NOW))).toBe('algorithm');
    });

    it('HS256 keyed with the public key (the key-confusion attack) → algorithm', async () => {
      const secret = new TextEncoder().encode(JSON.stringify(es256.jwk));
      const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: es256.kid }).sign(secret);
      expect(reasonOf(() => verifierFor().verify(hs, NOW))).toBe('algorithm');
    });

    it('an algorithm the configuration does not allow (EdDSA when only ES256 is) → algorithm', async () => {
      const ed = (await signer.sign(userId, ed25519, NOW)).token;
      expect(verifierFor().verify(ed, NOW).userId).toBe(userId);
      expect(reasonOf(() => verifierFor({ algorithms: ['ES256'] }).verify(ed, NOW))).toBe('algorithm');
    });

    it('an allowed alg that is not the key\'s own alg → algorithm', () => {
      const mismatched = signRaw({ alg: 'EdDSA', kid: es256.kid }, claims(), ed25519);
      expect(reasonOf(() => verifierFor().verify(mismatched, NOW))).toBe('algorithm');
    });

    it.each(['RS256', 'ES384', 'PS256', 'es256', ''])('alg %j → algorithm', (alg) => {
      const [, payload, signature] = parts();
      expect(reasonOf(() => verifierFor().verify(`${b64({ alg, kid: es256.kid })}.${payload}.${signature}`, NOW))).toBe('algorithm');
    });
  });

  describe('issuer and audience', () => {
    it('a wrong iss → issuer', () => {
      expect(reasonOf(() => verifierFor().verify(signRaw({ alg: 'ES256', kid: es256.kid }, claims({ iss: 'someone-else' }), es256), NOW))).toBe('issuer');
      expect(reasonOf(() => verifierFor({ issuer: 'another-issuer' }).verify(token, NOW))).toBe('issuer');
    });

    it('a missing iss → issuer', () => {
      expect(reasonOf(() => verifierFor().verify(signRaw({ alg: 'ES256', kid: es256.kid }, claims({ iss: undefined }), es256), NOW))).toBe('issuer');
    });

    it('a wrong aud → audience', () => {
      expect(reasonOf(() => verifierFor().verify(signRaw({ alg: 'ES256', kid: es256.kid }, claims({ aud: 'other-services' }), es256), NOW))).toBe('audience');
      expect(reasonOf(() => verifierFor({ audience: 'payments' }).verify(token, NOW))).toBe('audience');
    });

    it('an aud that is an array, even one holding the audience → audience (the contract fixes a string)', () => {
      const arrayAud = signRaw({ alg: 'ES256', kid: es256.kid }, claims({ aud: [AUDIENCE] }), es256);
      expect(reasonOf(() => verifierFor().verify(arrayAud, NOW))).toBe('audience');
    });
  });

  describe('claims', () => {
    it.each([
      ['sub that is not a UUID', { sub: 'admin' }],
      ['sub missing', { sub: undefined }],
      ['jti missing', { jti: undefined }],
      ['jti empty', { jti: '' }],
      ['exp missing', { exp: undefined }],
      ['exp as a string', { exp: String(NOW_S + TTL) }],
      ['iat missing', { iat: undefined }],
      ['nbf as a string', { nbf: String(NOW_S) }],
    ])('%s → claims', (_label, overrides) => {
      const bad = signRaw({ alg: 'ES256', kid: es256.kid }, claims(overrides), es256);
      expect(reasonOf(() => verifierFor().verify(bad, NOW))).toBe('claims');
    });
  });

  describe('shape', () => {
    it.each([
      ['an empty string', ''],
      ['one part', 'abc'],
      ['two parts', 'abc.def'],
      ['four parts', 'abc.def.ghi.jkl'],
      ['five parts (a JWE)', 'a.b.c.d.e'],
      ['empty header', '.def.ghi'],
      ['empty payload', 'abc..ghi'],
    ])('%s → malformed', (_label, value) => {
      expect(reasonOf(() => verifierFor().verify(value, NOW))).toBe('malformed');
    });

    it('the real token with a part added or removed → malformed', () => {
      const [header, payload, signature] = parts();
      expect(reasonOf(() => verifierFor().verify(`${header}.${payload}`, NOW))).toBe('malformed');
      expect(reasonOf(() => verifierFor().verify(`${token}.${signature}`, NOW))).toBe('malformed');
    });

    it.each([
      ['standard base64 "+"', (t: string) => t.replace(/-/g, '+').replace(/^([^.]*)\./, '$1+.')],
      ['standard base64 "/"', (t: string) => t.replace(/\.([^.]*)$/, './$1')],
      ['"=" padding', (t: string) => t.replace(/\./, '=.')],
      ['a space', (t: string) => t.replace('.', ' .')],
      ['a trailing newline', (t: string) => `${t}\n`],
      ['a non-ASCII letter', (t: string) => t.replace('.', 'é.')],
    ])('a part that is not base64url (%s) → malformed', (_label, mangle) => {
      const mangled = mangle(token);
      expect(mangled).not.toBe(token);
      expect(reasonOf(() => verifierFor().verify(mangled, NOW))).toBe('malformed');
    });

    it('a header that is not a JSON object → malformed', () => {
      const [, payload, signature] = parts();
      for (const header of [b64('not json'), b64([{ alg: 'ES256' }]), b64('null'), b64('"ES256"')]) {
        expect(reasonOf(() => verifierFor().verify(`${header}.${payload}.${signature}`, NOW))).toBe('malformed');
      }
    });

    it('a header without kid, or with a non-string alg or kid → malformed', () => {
      const [, payload, signature] = parts();
      for (const header of [{ alg: 'ES256' }, { alg: 'ES256', kid: 7 }, { alg: ['ES256'], kid: es256.kid }, { kid: es256.kid }]) {
        expect(reasonOf(() => verifierFor().verify(`${b64(header)}.${payload}.${signature}`, NOW))).toBe('malformed');
      }
    });

    it('a header with crit (extensions we do not understand) → malformed', () => {
      const withCrit = signRaw({ alg: 'ES256', kid: es256.kid, crit: ['exp'] }, claims(), es256);
      expect(reasonOf(() => verifierFor().verify(withCrit, NOW))).toBe('malformed');
    });

    it('a typ other than JWT (another kind of token, validly signed) → malformed; JWT in any case is fine', () => {
      for (const typ of ['at+jwt', 'JWE', 42]) {
        const other = signRaw({ alg: 'ES256', kid: es256.kid, typ }, claims(), es256);
        expect(reasonOf(() => verifierFor().verify(other, NOW)), String(typ)).toBe('malformed');
      }
      const lower = signRaw({ alg: 'ES256', kid: es256.kid, typ: 'jwt' }, claims(), es256);
      expect(verifierFor().verify(lower, NOW).userId).toBeDefined();
    });

    it('a payload that is not a JSON object (with a valid signature) → malformed', () => {
      const header = b64({ alg: 'ES256', kid: es256.kid });
      const payload = b64('[1,2,3]');
      const signature = withLowS(nodeSign('sha256', Buffer.from(`${header}.${payload}`), { key: es256.nodePrivateKey, dsaEncoding: 'ieee-p1363' }));
      expect(reasonOf(() => verifierFor().verify(`${header}.${payload}.${Buffer.from(signature).toString('base64url')}`, NOW))).toBe('malformed');
    });

    it(`over ${MAX_TOKEN_BYTES} bytes → too_large, checked before anything else`, () => {
      const [header, payload, signature] = parts();
      const padded = `${header}.${payload}${'A'.repeat(MAX_TOKEN_BYTES)}.${signature}`;
      expect(reasonOf(() => verifierFor().verify(padded, NOW))).toBe('too_large');
      expect(reasonOf(() => verifierFor().verify('x'.repeat(MAX_TOKEN_BYTES + 1), NOW))).toBe('too_large');
      expect(reasonOf(() => verifierFor().verify('.'.repeat(1_000_000), NOW))).toBe('too_large');
    });

    it(`exactly ${MAX_TOKEN_BYTES} bytes is not too large (it fails for another reason)`, () => {
      const value = `${'a'.repeat(MAX_TOKEN_BYTES - 4)}.b.c`;
      expect(value).toHaveLength(MAX_TOKEN_BYTES);
      expect(reasonOf(() => verifierFor().verify(value, NOW))).toBe('malformed');
    });
  });
});

describe('time and clock skew', () => {
  const at = (seconds: number) => new Date(seconds * 1000);
  let token: string;
  let exp: number;
  let nbf: number;

  beforeAll(async () => {
    token = (await signer.sign(userId, es256, NOW)).token;
    ({ exp, nbf } = decodeJwt(token) as { exp: number; nbf: number });
  });

  it('is valid until just before exp + skew, and expired at exp + skew', () => {
    expect(verifierFor().verify(token, at(exp - 1)).userId).toBe(userId);
    expect(verifierFor().verify(token, at(exp)).userId).toBe(userId); // inside the leeway
    expect(verifierFor().verify(token, at(exp + SKEW - 0.001)).userId).toBe(userId);
    expect(reasonOf(() => verifierFor().verify(token, at(exp + SKEW)))).toBe('expired');
    expect(reasonOf(() => verifierFor().verify(token, at(exp + 10 * TTL)))).toBe('expired');
  });

  it('is not yet valid until nbf - skew, and valid from then on', () => {
    expect(reasonOf(() => verifierFor().verify(token, at(nbf - SKEW - 0.001)))).toBe('not_yet_valid');
    expect(reasonOf(() => verifierFor().verify(token, at(nbf - 10 * SKEW)))).toBe('not_yet_valid');
    expect(verifierFor().verify(token, at(nbf - SKEW)).userId).toBe(userId);
    expect(verifierFor().verify(token, at(nbf)).userId).toBe(userId);
  });

  it('with no leeway, exp and nbf are exact', () => {
    const strict = verifierFor({ clockSkewSeconds: 0 });
    expect(strict.verify(token, at(exp - 0.001)).userId).toBe(userId);
    expect(reasonOf(() => strict.verify(token, at(exp)))).toBe('expired');
    expect(reasonOf(() => strict.verify(token, at(nbf - 0.001)))).toBe('not_yet_valid');
    expect(strict.verify(token, at(nbf)).userId).toBe(userId);
  });

  it('a token without nbf is valid from the start', () => {
    const noNbf = signRaw({ alg: 'ES256', kid: es256.kid }, claims({ nbf: undefined }), es256);
    expect(verifierFor().verify(noNbf, at(NOW_S - 10 * SKEW)).userId).toBe(userId);
  });

  it('the signature is checked before the time: an expired forgery is a signature failure', () => {
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64(claims({ exp: NOW_S - 10 * TTL }))}.${signature}`;
    expect(reasonOf(() => verifierFor().verify(forged, NOW))).toBe('signature');
  });
});

describe('JwtTokenProvider (cache in front of the verifier)', () => {
  const logger = pino({ level: 'silent' });

  function setup(cacheSize: number, signingKey: () => typeof es256 | undefined = () => es256) {
    let now = NOW;
    let published = true;
    const ring = {
      signingKey,
      publishedKey: (kid: string) => (published && kid === es256.kid ? es256 : undefined),
    } as unknown as KeyRing;
    const verifier = verifierFor({ findKey: (kid) => ring.publishedKey(kid) });
    const verify = vi.spyOn(verifier, 'verify');
    const inPool = vi.spyOn(verifier, 'verifyInPool');
    const metrics = createMetrics();
    const provider = new JwtTokenProvider({
      keys: ring,
      signer,
      verifier,
      clock: { now: () => now },
      logger,
      metrics,
      cacheSize,
      clockSkewSeconds: SKEW,
    });
    return {
      provider,
      verify,
      inPool,
      metrics,
      setNow: (value: Date) => (now = value),
      unpublish: () => (published = false),
    };
  }

  const id = UserId.fromTrusted(userId);

  it('answers UNAVAILABLE, not INTERNAL, while no signing key is active (issue 12)', () => {
    const { provider } = setup(100, () => undefined);
    let thrown: unknown;
    try {
      void provider.issue(id);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ServiceUnavailableError);
    expect(toConnectError(thrown).code).toBe(Code.Unavailable);
  });

  it('issues with the ring\'s signing key and verifies what it issued', async () => {
    const { provider } = setup(100);
    const issued = await provider.issue(id);
    expect(decodeProtectedHeader(issued.token).kid).toBe(es256.kid);
    const verified = await provider.verify(issued.token);
    expect(verified).toEqual({ userId, tokenId: issued.tokenId, issuedAt: issued.issuedAt, expiresAt: issued.expiresAt });
    expect(verified).not.toHaveProperty('kid');
  });

  it('remembers a token from its second check on: the first two verify, the rest come from the cache', async () => {
    const { provider, verify } = setup(100);
    const { token } = await provider.issue(id);
    await provider.verify(token);
    await provider.verify(token);
    expect(verify).toHaveBeenCalledTimes(2);
    await provider.verify(token);
    await provider.verify(token);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('does not remember tokens checked once: each of many distinct tokens is verified, and checking one again verifies it again', async () => {
    const { provider, verify } = setup(100);
    const tokens = await Promise.all(Array.from({ length: 50 }, () => provider.issue(id)));
    for (const { token } of tokens) await provider.verify(token);
    expect(verify).toHaveBeenCalledTimes(50);
    // The last token: an earlier one may have lost its sighting's slot to a later token (the
    // table is 128 slots here), and then rightly waits for one more check.
    const last = tokens.at(-1)!.token;
    await provider.verify(last);
    expect(verify).toHaveBeenCalledTimes(51);
    await provider.verify(last);
    expect(verify).toHaveBeenCalledTimes(51);
  });

  it('hands out one frozen answer from the first hit on, and fresh ones to the calls that verified', async () => {
    const { provider } = setup(100);
    const { token } = await provider.issue(id);
    const verified = [await provider.verify(token), await provider.verify(token)];
    const hits = [await provider.verify(token), await provider.verify(token)];
    expect(verified.map((answer) => Object.isFrozen(answer))).toEqual([false, false]);
    expect(Object.isFrozen(hits[0])).toBe(true);
    expect(hits[1]).toBe(hits[0]);
    expect(hits[0]).toEqual(verified[0]);
  });

  it('with cache size 0 verifies every time', async () => {
    const { provider, verify } = setup(0);
    const { token } = await provider.issue(id);
    await provider.verify(token);
    await provider.verify(token);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('a cached token is refused once its key is no longer published', async () => {
    const { provider, verify, unpublish } = setup(100);
    const { token } = await provider.issue(id);
    await provider.verify(token);
    await provider.verify(token);
    await provider.verify(token);
    expect(verify).toHaveBeenCalledTimes(2);
    unpublish();
    await expect(provider.verify(token)).rejects.toMatchObject({ reason: 'unknown_key' });
  });

  it('a cached token is refused once it has expired (with the same leeway as the verifier)', async () => {
    const { provider, verify, setNow } = setup(100);
    const issued = await provider.issue(id);
    await provider.verify(issued.token);
    await provider.verify(issued.token);
    setNow(new Date(issued.expiresAt.getTime() + SKEW * 1000 - 1));
    await expect(provider.verify(issued.token)).resolves.toMatchObject({ userId });
    expect(verify).toHaveBeenCalledTimes(2);
    setNow(new Date(issued.expiresAt.getTime() + SKEW * 1000));
    await expect(provider.verify(issued.token)).rejects.toMatchObject({ reason: 'expired' });
  });

  it('a failure is never cached, and is counted under its reason', async () => {
    const { provider, verify, metrics } = setup(100);
    const { token } = await provider.issue(id);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${header}.${payload}.${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    await expect(provider.verify(forged)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(provider.verify(forged)).rejects.toMatchObject({ reason: 'signature' });
    expect(verify).toHaveBeenCalledTimes(2);
    const { values } = await metrics.tokenVerifyFailures.get();
    expect(values.find((v) => v.labels['reason'] === 'signature')?.value).toBe(2);
  });

  it('verifyNow checks a signature at once while few arrive: the answer, or the refusal thrown and counted once', async () => {
    const { provider, verify, metrics } = setup(100);
    const { token } = await provider.issue(id);
    expect(provider.verifyNow(token)).toMatchObject({ userId });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${header}.${payload}.${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    expect(() => provider.verifyNow(forged)).toThrow(InvalidTokenError);
    expect(verify).toHaveBeenCalledTimes(2);
    const { values } = await metrics.tokenVerifyFailures.get();
    expect(values.find((v) => v.labels['reason'] === 'signature')?.value).toBe(1);
  });

  it('past 200 checks in 100 ms verifyNow leaves a token to verify(), which checks it on the thread pool, once', async () => {
    const { provider, verify, inPool } = setup(0);
    const tokens = await Promise.all(Array.from({ length: 260 }, () => provider.issue(id)));
    // The monotonic clock stands still, so all 260 checks fall in one window however slow the machine.
    const clock = vi.spyOn(performance, 'now').mockReturnValue(performance.now());
    let now: (VerifiedToken | undefined)[];
    try {
      now = tokens.map(({ token }) => provider.verifyNow(token));
    } finally {
      clock.mockRestore();
    }
    expect(now.findIndex((answer) => answer === undefined)).toBe(200);
    expect(now.slice(200).every((answer) => answer === undefined)).toBe(true);
    expect(verify).toHaveBeenCalledTimes(200);
    await expect(provider.verify(tokens.at(-1)!.token)).resolves.toMatchObject({ userId });
    expect(inPool).toHaveBeenCalledTimes(1);
    expect(verify).toHaveBeenCalledTimes(200);
  });

  it('a tampered copy of a cached token is not served from the cache', async () => {
    const { provider } = setup(100);
    const { token } = await provider.issue(id);
    await provider.verify(token);
    await provider.verify(token);
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64(claims({ sub: UserId.generate().value }))}.${signature}`;
    await expect(provider.verify(forged)).rejects.toMatchObject({ reason: 'signature' });
  });
});

describe('VerifyToken use case', () => {
  it('refuses a token that was not valid UTF-8 on the wire as INVALID_ARGUMENT on the token field, without verifying', async () => {
    const tokens = { issue: vi.fn(), verify: vi.fn() };
    const error: unknown = await new VerifyToken(tokens, { check: vi.fn() }).execute('abc.def\uD800.ghi').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).violations).toEqual([{ field: 'token', description: 'must be valid UTF-8' }]);
    expect(tokens.verify).not.toHaveBeenCalled();
  });

  it('passes any other string to the provider', async () => {
    const verified = { userId, tokenId: 'jti', issuedAt: NOW, expiresAt: NOW };
    const tokens = { issue: vi.fn(), verify: vi.fn().mockResolvedValue(verified) };
    const revocations = { check: vi.fn() };
    await expect(new VerifyToken(tokens, revocations).execute('abc.def.ghi')).resolves.toBe(verified);
    expect(tokens.verify).toHaveBeenCalledWith('abc.def.ghi');
    expect(revocations.check).toHaveBeenCalledWith(verified);
  });

  it('executeNow answers a token the provider tells at once, checked for revocation, without the provider\'s verify()', () => {
    const verified = { userId, tokenId: 'jti', issuedAt: NOW, expiresAt: NOW };
    const tokens = { issue: vi.fn(), verify: vi.fn(), verifyNow: vi.fn((token: string) => (token === 'known' ? verified : undefined)) };
    const revoked = new InvalidTokenError(TokenFailureReason.Revoked);
    const revocations = { check: vi.fn() };
    const useCase = new VerifyToken(tokens, revocations);
    expect(useCase.executeNow('known')).toBe(verified);
    expect(revocations.check).toHaveBeenCalledWith(verified);
    // Not known at once: only execute() can tell, and nothing was checked for it.
    revocations.check.mockClear();
    expect(useCase.executeNow('unknown')).toBeUndefined();
    expect(revocations.check).not.toHaveBeenCalled();
    // A revoked session is refused now as execute() would refuse it.
    revocations.check.mockImplementation(() => {
      throw revoked;
    });
    expect(() => useCase.executeNow('known')).toThrow(revoked);
    expect(tokens.verify).not.toHaveBeenCalled();
  });

  it('executeNow refuses bytes that were not UTF-8 at once, and knows nothing without a remembering provider', () => {
    const tokens = { issue: vi.fn(), verify: vi.fn() };
    const useCase = new VerifyToken(tokens, { check: vi.fn() });
    expect(() => useCase.executeNow('abc.def\uD800.ghi')).toThrow(InvalidArgumentError);
    expect(useCase.executeNow('abc.def.ghi')).toBeUndefined();
  });
});
