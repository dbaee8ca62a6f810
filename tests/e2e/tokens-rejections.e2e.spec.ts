import { createPublicKey, generateKeyPairSync, randomUUID, type JsonWebKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import {
  b64url,
  claimsFor,
  compact,
  decodeToken,
  delta,
  es256Signer,
  fetchJwks,
  hs256Signer,
  jwkThumbprint,
  jwksKids,
  privateJwkOf,
  signingKeyRows,
  verifyFailures,
  waitFor,
  type Expected,
  type Json,
} from '../helpers/jwt.js';
import { runCli } from '../helpers/process.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

const ISSUER = 'https://identity.test';
const AUDIENCE = 'mesh-test';
const SKEW_SECONDS = 30;
const expected: Expected = { issuer: ISSUER, audience: AUDIENCE };
// The CLI runs as its own node + tsx process, which takes many seconds to start on a loaded machine.
const CLI_TIMEOUT_MS = 120_000;

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let client: GrpcIdentityClient;
const logs = captureLogs();

/** A real user's real token, and the key that signed it (read back from the database). */
let userId: string;
let token: string;
let kid: string;
let privateJwk: JsonWebKey;
let signReal: (input: Buffer) => Buffer;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, {
    TOKEN_ISSUER: ISSUER,
    TOKEN_AUDIENCE: AUDIENCE,
    TOKEN_CLOCK_SKEW_SECONDS: String(SKEW_SECONDS),
    KEY_REFRESH_SECONDS: '1',
    LOG_LEVEL: 'debug',
  });
  service = await startTestService(env, { logDestination: logs.destination });
  client = new GrpcIdentityClient(service.url);
  const email = `tokens.${Date.now()}@example.com`;
  const registered = await client.registerUser({ email, password: 'correct horse battery', first_name: 'Tok', last_name: 'En' });
  userId = registered['user']['id'];
  token = (await client.authenticate({ email, password: 'correct horse battery' }))['access_token'];
  kid = String(decodeToken(token).header['kid']);
  privateJwk = await privateJwkOf(db.knex, kid, env['KEY_ENCRYPTION_KEY']!);
  signReal = es256Signer(privateJwk);
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const header = (extra: Json = {}): Json => ({ alg: 'ES256', typ: 'JWT', kid, ...extra });
const realToken = (claims: Json = {}, headerExtra: Json = {}) => compact(header(headerExtra), claimsFor(userId, expected, claims), signReal);
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Every refusal seen, to compare what the callers were told. */
const refusals: { reason: string; error: grpc.ServiceError }[] = [];

/** VerifyToken over grpc-js: UNAUTHENTICATED, and exactly `reason` counted once on /metrics. */
async function expectRefused(candidate: string, reason: string): Promise<grpc.ServiceError> {
  const before = await verifyFailures(service.adminUrl);
  const error = await grpcError(client.verifyToken({ token: candidate }));
  const after = await verifyFailures(service.adminUrl);
  expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
  expect(delta(before, after)).toEqual({ [reason]: 1 });
  refusals.push({ reason, error });
  return error;
}

describe('forged and broken tokens are refused with UNAUTHENTICATED and the right reason counted', () => {
  it('accepts the real token, and a token forged with the real key (the forging itself is sound)', async () => {
    const verified = await client.verifyToken({ token });
    expect(verified['user_id']).toBe(userId);
    const forged = await client.verifyToken({ token: realToken({ jti: 'forged-but-valid' }) });
    expect(forged).toMatchObject({ user_id: userId, token_id: 'forged-but-valid' });
  });

  it('alg none, unsigned, with and without a kid', async () => {
    await expectRefused(compact({ alg: 'none', typ: 'JWT' }, claimsFor(userId, expected)), 'algorithm');
    await expectRefused(compact({ alg: 'none', typ: 'JWT', kid }, claimsFor(userId, expected)), 'algorithm');
    await expectRefused(`${b64url({ alg: 'none', kid })}.${token.split('.')[1]}.`, 'algorithm');
  });

  it('HS256 with the published public key as the HMAC secret (algorithm confusion)', async () => {
    const jwk = (await fetchJwks(service.adminUrl)).keys.find((key) => key['kid'] === kid)!;
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    await expectRefused(compact(header({ alg: 'HS256' }), claimsFor(userId, expected), hs256Signer(pem)), 'algorithm');
    await expectRefused(compact(header({ alg: 'HS256' }), claimsFor(userId, expected), hs256Signer(der)), 'algorithm');
    await expectRefused(compact(header({ alg: 'HS256' }), claimsFor(userId, expected), hs256Signer(JSON.stringify(jwk))), 'algorithm');
  });

  it('a kid no key of ours has, even when the token is properly signed by that other key', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherJwk = other.publicKey.export({ format: 'jwk' });
    const forged = compact(header({ kid: jwkThumbprint(otherJwk) }), claimsFor(userId, expected), es256Signer(other.privateKey.export({ format: 'jwk' })));
    await expectRefused(forged, 'unknown_key');
    await expectRefused(realToken({}, { kid: 'no-such-key' }), 'unknown_key');
  });

  it('our kid on a token signed with another key', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expectRefused(compact(header(), claimsFor(userId, expected), es256Signer(other.privateKey.export({ format: 'jwk' }))), 'signature');
  });

  it('expired beyond the clock skew', async () => {
    const now = nowSeconds();
    await expectRefused(realToken({ iat: now - 3_700, nbf: now - 3_700, exp: now - SKEW_SECONDS - 60 }), 'expired');
  });

  it('not yet valid beyond the clock skew', async () => {
    const now = nowSeconds();
    await expectRefused(realToken({ iat: now, nbf: now + SKEW_SECONDS + 60, exp: now + 3_600 }), 'not_yet_valid');
  });

  it('but accepts exp and nbf within the clock skew', async () => {
    const now = nowSeconds();
    await expect(client.verifyToken({ token: realToken({ exp: now - SKEW_SECONDS + 10 }) })).resolves.toMatchObject({ user_id: userId });
    await expect(client.verifyToken({ token: realToken({ nbf: now + SKEW_SECONDS - 10 }) })).resolves.toMatchObject({ user_id: userId });
  });

  it('a wrong or merely similar issuer', async () => {
    await expectRefused(realToken({ iss: 'https://evil.test' }), 'issuer');
    await expectRefused(realToken({ iss: `${ISSUER}/` }), 'issuer');
  });

  it('a wrong audience', async () => {
    await expectRefused(realToken({ aud: 'some-other-service' }), 'audience');
  });

  it('a tampered payload (another subject, a later exp) under the original signature', async () => {
    const [encodedHeader, , signature] = token.split('.');
    const claims = decodeToken(token).claims;
    await expectRefused(`${encodedHeader}.${b64url({ ...claims, sub: randomUUID() })}.${signature}`, 'signature');
    await expectRefused(`${encodedHeader}.${b64url({ ...claims, exp: Number(claims['exp']) + 86_400 })}.${signature}`, 'signature');
  });

  it('a tampered signature', async () => {
    const [encodedHeader, payload, signature = ''] = token.split('.');
    const flipped = `${signature.slice(0, 20)}${signature[20] === 'A' ? 'B' : 'A'}${signature.slice(21)}`;
    await expectRefused(`${encodedHeader}.${payload}.${flipped}`, 'signature');
    const truncated = b64url(Buffer.from(signature, 'base64url').subarray(0, 63));
    await expectRefused(`${encodedHeader}.${payload}.${truncated}`, 'signature');
  });

  it('two-part and four-part strings', async () => {
    const [encodedHeader, payload] = token.split('.');
    await expectRefused(`${encodedHeader}.${payload}`, 'malformed');
    await expectRefused(`${token}.${b64url('extra')}`, 'malformed');
    await expectRefused('', 'malformed');
    await expectRefused('..', 'malformed');
    await expectRefused(realToken({}, { kid: undefined }), 'malformed');
  });

  it('a 100 KB token, even one properly signed', async () => {
    const huge = realToken({ padding: 'x'.repeat(100 * 1024) });
    expect(huge.length).toBeGreaterThan(100 * 1024);
    await expectRefused(huge, 'too_large');
  });

  it('bytes that are not base64url', async () => {
    const [encodedHeader, payload, signature = ''] = token.split('.');
    const standardBase64 = Buffer.from(signature, 'base64url').toString('base64');
    await expectRefused(`${encodedHeader}.${payload}.${standardBase64}`, 'malformed');
    await expectRefused(`${encodedHeader}.${payload} .${signature}`, 'malformed');
    await expectRefused(`${encodedHeader}.${payload}.${signature}é`, 'malformed');
    await expectRefused(`${b64url('not json')}.${payload}.${signature}`, 'malformed');
  });

  it('tells every caller the same thing, whatever the reason, and logs the reason only', () => {
    const reasons = new Set(refusals.map(({ reason }) => reason));
    expect([...reasons].sort()).toEqual(['algorithm', 'audience', 'expired', 'issuer', 'malformed', 'not_yet_valid', 'signature', 'too_large', 'unknown_key']);
    const [first] = refusals;
    const details = (error: grpc.ServiceError) => error.metadata.get('grpc-status-details-bin').map((value) => Buffer.from(value).toString('base64'));
    for (const { error } of refusals) {
      expect(error.details).toBe(first!.error.details);
      expect(details(error)).toEqual(details(first!.error));
    }
    expect(first!.error.details).toBe('invalid token');
    const logged = logs.lines.map((line) => JSON.parse(line) as Json).filter((line) => line['msg'] === 'token refused');
    expect(new Set(logged.map((line) => line['reason']))).toEqual(reasons);
    const [, , signature = ''] = token.split('.');
    expect(logs.text()).not.toContain(signature);
  });
});

describe('the verification cache', () => {
  it('gives the same answer for the same token, every time', async () => {
    const before = await verifyFailures(service.adminUrl);
    const first = await client.verifyToken({ token });
    const second = await client.verifyToken({ token });
    expect(second).toEqual(first);
    expect(first).toMatchObject({ user_id: userId, token_id: decodeToken(token).claims['jti'] });
    const bad = realToken({ aud: 'elsewhere' });
    for (let i = 0; i < 2; i++) expect((await grpcError(client.verifyToken({ token: bad }))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(delta(before, await verifyFailures(service.adminUrl))).toEqual({ audience: 2 });
  });
});

describe('a key retired and removed', () => {
  it('leaves the JWKS, and its tokens are refused as unknown_key, cached or freshly forged', async () => {
    // A token of the current key verified twice (so cached), which the rotation below retires.
    for (let i = 0; i < 2; i++) await client.verifyToken({ token });
    const rotated = await runCli(['keys', 'rotate'], { ...env, LOG_LEVEL: 'error', KEY_PUBLISH_LEAD_SECONDS: '0' }, CLI_TIMEOUT_MS);
    expect(rotated.code, rotated.stderr).toBe(0);
    const next = String((JSON.parse(rotated.stdout) as Json)['kid']);
    await waitFor(async () => (await jwksKids(service.adminUrl)).includes(next), 'the new key in the JWKS');
    // Retired, not removed: its tokens still verify.
    await expect(client.verifyToken({ token })).resolves.toMatchObject({ user_id: userId });
    const listed = await runCli(['keys', 'list'], { ...env, LOG_LEVEL: 'error' }, CLI_TIMEOUT_MS);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ kid, state: 'retired', retiresAt: expect.any(String), removesAt: expect.any(String) }),
      expect.objectContaining({ kid: next, state: 'active', retiresAt: null }),
    ]);

    // As if its last token had expired: removal at retirement.
    await db.knex('signing_keys').where({ kid }).update({ removes_at: db.knex.ref('retires_at') });
    await waitFor(async () => !(await jwksKids(service.adminUrl)).includes(kid), 'the removed key to leave the JWKS');
    expect(await jwksKids(service.adminUrl)).toEqual([next]);
    await expectRefused(token, 'unknown_key');
    await expectRefused(realToken(), 'unknown_key');
    // The private key is gone from the database too.
    expect((await signingKeyRows(db.knex)).map((row) => row.kid)).toEqual([next]);

    const email = `after.removal.${Date.now()}@example.com`;
    await client.registerUser({ email, password: 'correct horse battery', first_name: 'New', last_name: 'Key' });
    const fresh = (await client.authenticate({ email, password: 'correct horse battery' }))['access_token'];
    expect(decodeToken(fresh).header['kid']).toBe(next);
    await expect(client.verifyToken({ token: fresh })).resolves.toHaveProperty('user_id');
  }, 3 * CLI_TIMEOUT_MS);
});
