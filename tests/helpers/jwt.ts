/**
 * Token tools for the end-to-end suites, written against the standards (RFC 7515/7517/7519/7638)
 * with node:crypto only, so they check the service from the outside: what a mesh sidecar does
 * with the JWKS, and how an attacker forges tokens. Only reading a stored private key borrows
 * the service's KeyEncryption (the at-rest format is the service's own business).
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, randomUUID, sign, verify, type JsonWebKey } from 'node:crypto';
import type { Knex } from 'knex';
import { KeyEncryption } from '../../src/infrastructure/tokens/key-encryption.js';

export type Json = Record<string, unknown>;

export const b64url = (value: Buffer | string | Json): string =>
  (Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))).toString('base64url');

const decodePart = (part: string): Json => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Json;

export function decodeToken(token: string): { header: Json; claims: Json } {
  const [header = '', payload = ''] = token.split('.');
  return { header: decodePart(header), claims: decodePart(payload) };
}

/** RFC 7638: SHA-256 over the required members only, in lexicographic order, no whitespace. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const required = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(required)).digest('base64url');
}

// --- the JWKS, as a sidecar fetches it ---

export interface JwksResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly keys: JsonWebKey[];
}

export async function fetchJwks(adminUrl: string, headers: Record<string, string> = {}): Promise<JwksResponse> {
  const response = await fetch(`${adminUrl}/.well-known/jwks.json`, { headers });
  const text = await response.text();
  const keys = response.status === 200 ? ((JSON.parse(text) as { keys: JsonWebKey[] }).keys ?? []) : [];
  return { status: response.status, headers: response.headers, text, keys };
}

export const jwksKids = async (adminUrl: string): Promise<string[]> => (await fetchJwks(adminUrl)).keys.map((key) => String(key['kid']));

export interface Expected {
  readonly issuer: string;
  readonly audience: string;
  readonly now?: Date;
  readonly leewaySeconds?: number;
}

/**
 * What Envoy's jwt_authn does with a bearer token: pick the JWKS entry by kid, insist the
 * header alg is the key's alg, check the signature, then iss, aud and the time claims.
 * Throws an Error naming the first check that failed.
 */
export function sidecarVerify(token: string, keys: readonly JsonWebKey[], expected: Expected): { header: Json; claims: Json } {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWS compact serialization');
  const [encodedHeader = '', encodedPayload = '', encodedSignature = ''] = parts;
  const header = decodePart(encodedHeader);
  const jwk = keys.find((key) => key['kid'] === header['kid']);
  if (jwk === undefined) throw new Error(`kid ${String(header['kid'])} is not in the JWKS`);
  if (header['alg'] !== jwk['alg']) throw new Error(`alg ${String(header['alg'])} is not the key's ${String(jwk['alg'])}`);
  const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${encodedHeader}.${encodedPayload}`);
  const signature = Buffer.from(encodedSignature, 'base64url');
  const valid =
    jwk['alg'] === 'ES256'
      ? verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
      : jwk['alg'] === 'EdDSA' && verify(null, data, publicKey, signature);
  if (!valid) throw new Error('bad signature');
  const claims = decodePart(encodedPayload);
  const now = (expected.now ?? new Date()).getTime() / 1000;
  const leeway = expected.leewaySeconds ?? 0;
  if (claims['iss'] !== expected.issuer) throw new Error(`iss ${String(claims['iss'])}`);
  if (claims['aud'] !== expected.audience) throw new Error(`aud ${String(claims['aud'])}`);
  if (typeof claims['exp'] !== 'number' || now - leeway >= claims['exp']) throw new Error('expired');
  if (typeof claims['nbf'] === 'number' && now + leeway < claims['nbf']) throw new Error('not yet valid');
  return { header, claims };
}

// --- forging ---

/** header.payload.signature from JSON parts and an optional signer over the signing input. */
export function compact(header: Json, claims: Json, signer: (input: Buffer) => Buffer = () => Buffer.alloc(0)): string {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${b64url(signer(Buffer.from(input)))}`;
}

/** n of P-256. */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** s of an ES256 (r ‖ s) signature, and the same signature with another s. */
export const sOf = (signature: Buffer): bigint => BigInt(`0x${signature.subarray(32).toString('hex')}`);
export const withS = (signature: Buffer, s: bigint): Buffer =>
  Buffer.concat([signature.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);

/** ES256 as the service signs: of the two valid signatures (r, s) and (r, n − s), the low-S one. */
export const es256Signer = (privateJwk: JsonWebKey) => {
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  return (input: Buffer): Buffer => {
    const signature = sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    const s = sOf(signature);
    return s > P256_ORDER / 2n ? withS(signature, P256_ORDER - s) : signature;
  };
};

export const ed25519Signer = (privateJwk: JsonWebKey) => {
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  return (input: Buffer): Buffer => sign(null, input, key);
};

export const hs256Signer = (secret: string | Buffer) => (input: Buffer): Buffer => createHmac('sha256', secret).update(input).digest();

/** The claims our service puts in a token, valid now, for `sub`. */
export function claimsFor(sub: string, expected: Expected, overrides: Json = {}): Json {
  const now = Math.floor((expected.now ?? new Date()).getTime() / 1000);
  return { iss: expected.issuer, aud: expected.audience, sub, iat: now, nbf: now, exp: now + 600, jti: randomUUID(), ...overrides };
}

// --- the signing_keys table ---

export interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: JsonWebKey;
  private_key_encrypted: Buffer;
  created_at: Date;
  activates_at: Date;
  retires_at: Date | null;
  removes_at: Date | null;
}

export const signingKeyRows = (knex: Knex): Promise<SigningKeyRow[]> => knex('signing_keys').select('*').orderBy('activates_at');

/** Decrypts a stored private key with the KEY_ENCRYPTION_KEY the test gave the service. */
export async function privateJwkOf(knex: Knex, kid: string, keyEncryptionKey: string): Promise<JsonWebKey> {
  const row = (await signingKeyRows(knex)).find((candidate) => candidate.kid === kid);
  if (row === undefined) throw new Error(`no signing_keys row for ${kid}`);
  const plaintext = new KeyEncryption(Buffer.from(keyEncryptionKey, 'base64')).decrypt(kid, Buffer.from(row.private_key_encrypted));
  return JSON.parse(plaintext.toString('utf8')) as JsonWebKey;
}

// --- metrics and waiting ---

/** token_verify_failures_total by reason, read from /metrics on the admin port. */
export async function verifyFailures(adminUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^token_verify_failures_total\{reason="([^"]+)"\} (\S+)$/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}

/** The change of each counter between two readings, zeros left out. */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const changed: Record<string, number> = {};
  for (const [reason, value] of Object.entries(after)) {
    const difference = value - (before[reason] ?? 0);
    if (difference !== 0) changed[reason] = difference;
  }
  return changed;
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
