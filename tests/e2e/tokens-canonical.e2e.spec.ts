import { verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { delta, fetchJwks, P256_ORDER, sOf, verifyFailures, withS } from '../helpers/jwt.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * VerifyToken through grpc-js accepts one spelling per token: the trailing-bit twins of the
 * signature (same bytes, other base64url text) and the high-S twin (r, n − s), which a plain
 * ECDSA check accepts, are UNAUTHENTICATED, also after the original sits in the cache.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const PASSWORD = 'canonical tokens only 42';

let db: TestDatabase;
let service: TestService;
let client: GrpcIdentityClient;
let email: string;

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startTestService(testEnv(db));
  client = new GrpcIdentityClient(service.url);
  email = `canonical.${Date.now()}@example.com`;
  await client.registerUser({ email, password: PASSWORD, first_name: 'Can', last_name: 'Onical' });
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const login = async (): Promise<string> => (await client.authenticate({ email, password: PASSWORD }))['access_token'] as string;
const split = (token: string) => token.split('.') as [string, string, string];

/** VerifyToken answers UNAUTHENTICATED and counts the reason once. */
async function expectRefused(candidate: string, reason: string): Promise<void> {
  const before = await verifyFailures(service.adminUrl);
  expect((await grpcError(client.verifyToken({ token: candidate }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect(delta(before, await verifyFailures(service.adminUrl))).toEqual({ [reason]: 1 });
}

describe('VerifyToken refuses the other spellings of a real token', () => {
  it('the signature with its unused trailing bits set: 15 twins, each malformed, while the original verifies (and stays cached)', async () => {
    const token = await login();
    const [header, payload, signature] = split(token);
    // 64 bytes are 86 characters: the last one carries 2 bits and 4 unused ones.
    expect(signature).toHaveLength(86);
    // Twice: a token is remembered on its second check.
    for (let i = 0; i < 2; i++) expect((await client.verifyToken({ token }))['token_id']).toEqual(expect.any(String));
    const last = ALPHABET.indexOf(signature.at(-1)!);
    for (let low = 1; low < 16; low++) {
      const twin = `${signature.slice(0, -1)}${ALPHABET[last ^ low]}`;
      expect(Buffer.from(twin, 'base64url')).toEqual(Buffer.from(signature, 'base64url'));
      await expectRefused(`${header}.${payload}.${twin}`, 'malformed');
    }
    expect((await client.verifyToken({ token }))['token_id']).toEqual(expect.any(String));
  });

  it('the high-S twin (r, n − s): a valid ECDSA signature, refused as a bad signature', async () => {
    const token = await login();
    const [header, payload, signature] = split(token);
    const bytes = Buffer.from(signature, 'base64url');
    expect(sOf(bytes) <= P256_ORDER / 2n).toBe(true); // the service signs low-S
    const twin = withS(bytes, P256_ORDER - sOf(bytes));
    // What a sidecar doing a plain ECDSA check with the published key would accept:
    const jwk = (await fetchJwks(service.adminUrl)).keys[0]!;
    expect(verify('sha256', Buffer.from(`${header}.${payload}`), { key: jwk, format: 'jwk', dsaEncoding: 'ieee-p1363' }, twin)).toBe(true);
    await expectRefused(`${header}.${payload}.${twin.toString('base64url')}`, 'signature');
    expect((await client.verifyToken({ token }))['token_id']).toEqual(expect.any(String));
  });

  it('every token the service issues is low-S', async () => {
    for (let i = 0; i < 8; i++) {
      const signature = Buffer.from(split(await login())[2], 'base64url');
      expect(sOf(signature) <= P256_ORDER / 2n).toBe(true);
    }
  });
});
