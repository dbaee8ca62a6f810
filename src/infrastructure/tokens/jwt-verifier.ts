import { verify as verifySignature } from 'node:crypto';
import { InvalidTokenError, TokenFailureReason } from '../../domain/identity/identity.errors.js';
import type { VerifiedToken } from '../../application/ports/token-provider.port.js';
import { SessionId } from '../../domain/identity/value-objects/session-id.value-object.js';
import { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import type { LoadedKey } from './key-ring.js';
import { p1363ToDer } from './p1363-to-der.js';
import { hasHighS } from './p256-low-s.js';
import type { SigningAlgorithm } from './signing-key.store.js';

/** Far above any token we issue (~400 bytes); anything longer is refused before parsing. */
export const MAX_TOKEN_BYTES = 4096;
// Empty parts pass here so that an unsigned `alg: none` token is refused (and counted) for its alg.
// The alphabet alone is not enough: see decodePart.
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export interface JwtVerifierOptions {
  readonly algorithms: readonly SigningAlgorithm[];
  readonly issuer: string;
  readonly audience: string;
  readonly clockSkewSeconds: number;
  readonly findKey: (kid: string) => LoadedKey | undefined;
}

export interface VerifiedJwt extends VerifiedToken {
  readonly kid: string;
}

const fail = (reason: TokenFailureReason): never => {
  throw new InvalidTokenError(reason);
};

/**
 * Strict JWS compact verification with node:crypto. Header and claims are checked by the rules
 * of the contract: an allowed alg equal to the key's own alg, a known published kid, exact iss
 * and aud, and exp/nbf with the configured leeway. verify() checks the signature on the calling
 * thread; verifyInPool() on libuv's thread pool, which the service uses for tokens it has not
 * cached while many arrive (see SignatureLoad). Handing a check to the pool costs the event
 * loop 9 µs in node:crypto's callback form with a DER signature and a bare KeyObject (35 µs
 * through WebCrypto, as jose does, 60 µs with `dsaEncoding`), against 80–100 µs to check it on
 * the loop. The pool's queue holds at most one check per open stream, so MAX_OPEN_STREAMS
 * bounds it; a gzip response or a DNS lookup for a reconnect waits behind at most that many
 * checks (7–8 ms per hundred on the image's one pool thread, see the Dockerfile).
 */
export class JwtVerifier {
  private readonly headers = new Map<string, CheckedHeader>();

  constructor(private readonly options: JwtVerifierOptions) {}

  verify(token: string, now: Date): VerifiedJwt {
    const signed = this.parse(token);
    if (!signatureMatches(signed)) fail(TokenFailureReason.Signature);
    return this.claimsOf(signed, now);
  }

  /**
   * verify, with the signature checked on libuv's thread pool (node:crypto's callback form):
   * a token that is not cached then costs the event loop its parsing only, and a second core
   * checks signatures while the first serves calls (issue 16: the loop alone reached half of
   * what one core verifies). Everything before and after the signature runs here, in order.
   */
  async verifyInPool(token: string, now: Date): Promise<VerifiedJwt> {
    const signed = this.parse(token);
    if (!(await signatureMatchesInPool(signed))) fail(TokenFailureReason.Signature);
    return this.claimsOf(signed, now);
  }

  /** The token's parts, its header checked against the contract and its key found. */
  private parse(token: string): SignedToken {
    if (token.length > MAX_TOKEN_BYTES) fail(TokenFailureReason.TooLarge);
    const parts = token.split('.');
    if (parts.length !== 3) fail(TokenFailureReason.Malformed);
    const [encodedHeader = '', encodedPayload = '', encodedSignature = ''] = parts;
    const known = this.headers.get(encodedHeader);
    const headerBytes = known === undefined ? decodePart(encodedHeader) : undefined;
    const [payloadBytes, signature] = [decodePart(encodedPayload), decodePart(encodedSignature)];
    const { alg, kid } = known ?? this.checkHeader(encodedHeader, headerBytes!);
    // The key is looked up on every call: keys are published and withdrawn while headers are remembered.
    const key = this.options.findKey(kid) ?? fail(TokenFailureReason.UnknownKey);
    if (key.alg !== alg) fail(TokenFailureReason.Algorithm);
    return { key, signingInput: Buffer.from(`${encodedHeader}.${encodedPayload}`), signature, payloadBytes };
  }

  /**
   * A header checked against the contract, remembered by its encoding: every token of a key
   * carries the same one, and decoding and parsing it again was a twentieth of an uncached
   * VerifyToken (issue 16). Only headers that pass are kept, at most MAX_KNOWN_HEADERS (a client
   * sending new ones empties the memo, it does not grow it).
   */
  private checkHeader(encoded: string, bytes: Buffer): CheckedHeader {
    const { alg, kid, crit, typ } = parseJson(bytes);
    if (typeof alg !== 'string' || crit !== undefined) fail(TokenFailureReason.Malformed);
    if (!this.options.algorithms.includes(alg as SigningAlgorithm)) fail(TokenFailureReason.Algorithm);
    if (typeof kid !== 'string') fail(TokenFailureReason.Malformed);
    // We issue typ JWT; another type (say an ID token or a JWE) is not an access token of ours.
    if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT')) fail(TokenFailureReason.Malformed);
    const checked: CheckedHeader = { alg: alg as string, kid: kid as string };
    if (this.headers.size >= MAX_KNOWN_HEADERS) this.headers.clear();
    this.headers.set(encoded, checked);
    return checked;
  }

  private claimsOf(signed: SignedToken, now: Date): VerifiedJwt {
    return { kid: signed.key.kid, ...this.checkClaims(parseJson(signed.payloadBytes), now) };
  }

  private checkClaims(claims: Record<string, unknown>, now: Date): VerifiedToken {
    const { issuer, audience, clockSkewSeconds: skew } = this.options;
    const { iss, aud, sub, iat, nbf, exp, jti, sid } = claims;
    if (typeof sub !== 'string' || !UserId.isValid(sub) || typeof jti !== 'string' || jti.length === 0) fail(TokenFailureReason.Claims);
    if (sid !== undefined && (typeof sid !== 'string' || !SessionId.isValid(sid))) fail(TokenFailureReason.Claims);
    if (!isNumericDate(exp) || !isNumericDate(iat) || (nbf !== undefined && !isNumericDate(nbf))) fail(TokenFailureReason.Claims);
    if (iss !== issuer) fail(TokenFailureReason.Issuer);
    if (aud !== audience) fail(TokenFailureReason.Audience);
    const seconds = now.getTime() / 1000;
    if (seconds - skew >= (exp as number)) fail(TokenFailureReason.Expired);
    if (nbf !== undefined && seconds + skew < (nbf as number)) fail(TokenFailureReason.NotYetValid);
    return {
      userId: sub as string,
      tokenId: jti as string,
      issuedAt: new Date((iat as number) * 1000),
      expiresAt: new Date((exp as number) * 1000),
      ...(typeof sid === 'string' && sid !== '' ? { sessionId: sid } : {}),
    };
  }
}

/** What a token's header says, once checked: its alg and kid. */
interface CheckedHeader {
  readonly alg: string;
  readonly kid: string;
}

/** A few keys are published at once (the active one, the next, the retiring ones). */
const MAX_KNOWN_HEADERS = 16;

interface SignedToken {
  readonly key: LoadedKey;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
  readonly payloadBytes: Buffer;
}

/** The shape every signature of ours has: 64 bytes, and for ES256 (r, s) with s low (see p256-low-s). */
function wellFormed({ key, signature }: SignedToken): boolean {
  // (r, n − s) verifies too: only the low-S spelling is ours.
  return signature.length === 64 && (key.alg !== 'ES256' || !hasHighS(signature));
}

/** What node:crypto's verify is given: ES256 in DER with the bare KeyObject (see p1363-to-der), EdDSA as it comes. */
function cryptoInput({ key, signature }: SignedToken): { readonly digest: string | null; readonly signature: Buffer } {
  return key.alg === 'ES256' ? { digest: 'sha256', signature: p1363ToDer(signature) } : { digest: null, signature };
}

function signatureMatches(signed: SignedToken): boolean {
  if (!wellFormed(signed)) return false;
  const { digest, signature } = cryptoInput(signed);
  return verifySignature(digest, signed.signingInput, signed.key.publicKey, signature);
}

function signatureMatchesInPool(signed: SignedToken): Promise<boolean> {
  if (!wellFormed(signed)) return Promise.resolve(false);
  const { digest, signature } = cryptoInput(signed);
  return new Promise((resolve, reject) => {
    verifySignature(digest, signed.signingInput, signed.key.publicKey, signature, (error, matches) => (error === null ? resolve(matches) : reject(error)));
  });
}

const isNumericDate = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * One spelling per token: Node's decoder ignores padding, `+`, `/` and the unused low bits of
 * the last character, so `…Q`, `…R`, `…S` and `…T` decode alike. Only the spelling that
 * encoding the bytes gives back is accepted; re-encoding the three parts of a ~400-byte
 * token was measured at under 1 µs, against ~90 µs for the signature check.
 */
function decodePart(part: string): Buffer {
  if (!BASE64URL.test(part)) fail(TokenFailureReason.Malformed);
  const bytes = Buffer.from(part, 'base64url');
  if (bytes.toString('base64url') !== part) fail(TokenFailureReason.Malformed);
  return bytes;
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through: not JSON
  }
  return fail(TokenFailureReason.Malformed);
}
