import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { b64url, claimsFor, compact, decodeToken, delta, ed25519Signer, fetchJwks, jwkThumbprint, privateJwkOf, sidecarVerify, signingKeyRows, verifyFailures } from '../helpers/jwt.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ISSUER = 'https://identity.eddsa.test';
const AUDIENCE = 'eddsa-test';
const PASSWORD = 'correct horse battery';

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let client: GrpcIdentityClient;
let userId: string;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { TOKEN_ISSUER: ISSUER, TOKEN_AUDIENCE: AUDIENCE, TOKEN_ALGORITHMS: 'EdDSA' });
  service = await startTestService(env);
  client = new GrpcIdentityClient(service.url);
  const email = `eddsa.${Date.now()}.${randomBytes(3).toString('hex')}@example.com`;
  userId = (await client.registerUser({ email, password: PASSWORD, first_name: 'Ed', last_name: 'Dsa' }))['user']['id'];
  token = (await client.authenticate({ email, password: PASSWORD }))['access_token'];
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

describe('TOKEN_ALGORITHMS=EdDSA on a fresh database', () => {
  it('publishes an Ed25519 key and issues EdDSA tokens that verify, through VerifyToken and a plain node:crypto sidecar', async () => {
    const { keys } = await fetchJwks(service.adminUrl);
    expect(keys).toHaveLength(1);
    const [jwk] = keys;
    expect(Object.keys(jwk!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwk!['kid']).toBe(jwkThumbprint(jwk!));

    expect(decodeToken(token).header).toMatchObject({ alg: 'EdDSA', kid: jwk!['kid'] });
    expect(token.split('.')[2]).toHaveLength(86); // 64 bytes
    const { claims } = sidecarVerify(token, keys, { issuer: ISSUER, audience: AUDIENCE });
    expect(claims['sub']).toBe(userId);
    await expect(client.verifyToken({ token })).resolves.toMatchObject({ user_id: userId, token_id: claims['jti'] });
  });

  it('refuses an EdDSA token whose alg header claims ES256, and a tampered one', async () => {
    const kid = String(decodeToken(token).header['kid']);
    const signer = ed25519Signer(await privateJwkOf(db.knex, kid, env['KEY_ENCRYPTION_KEY']!));
    const expected = { issuer: ISSUER, audience: AUDIENCE };
    await expect(client.verifyToken({ token: compact({ alg: 'EdDSA', kid }, claimsFor(userId, expected), signer) })).resolves.toHaveProperty('user_id', userId);

    const before = await verifyFailures(service.adminUrl);
    const relabelled = compact({ alg: 'ES256', kid }, claimsFor(userId, expected), signer);
    expect((await grpcError(client.verifyToken({ token: relabelled }))).code).toBe(grpc.status.UNAUTHENTICATED);
    const [encodedHeader, , signature] = token.split('.');
    const tampered = `${encodedHeader}.${b64url({ ...decodeToken(token).claims, sub: randomUUID() })}.${signature}`;
    expect((await grpcError(client.verifyToken({ token: tampered }))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(delta(before, await verifyFailures(service.adminUrl))).toEqual({ algorithm: 1, signature: 1 });
  });
});

describe('a service configured for ES256 only', () => {
  it('does not start on a database whose signing key is EdDSA: it would refuse every token it issued', async () => {
    const rowsBefore = await signingKeyRows(db.knex);
    const error = await startTestService({ ...env, TOKEN_ALGORITHMS: 'ES256' }).then(
      async (started) => {
        await started[Symbol.asyncDispose]();
        return new Error('the service started');
      },
      (failure: unknown) => failure as Error,
    );
    const kid = String(decodeToken(token).header['kid']);
    expect(error.message).toBe(
      `the active signing key ${kid} is EdDSA, which TOKEN_ALGORITHMS (ES256) does not accept: every token signed with it would be refused; add EdDSA to TOKEN_ALGORITHMS`,
    );
    expect(await signingKeyRows(db.knex)).toEqual(rowsBefore);
  });

  it('refuses EdDSA tokens', async () => {
    const esDb = await createTestDatabase();
    try {
      await using esOnly = await startTestService(testEnv(esDb, { TOKEN_ISSUER: ISSUER, TOKEN_AUDIENCE: AUDIENCE, TOKEN_ALGORITHMS: 'ES256' }));
      const esClient = new GrpcIdentityClient(esOnly.url);
      try {
        expect((await fetchJwks(esOnly.adminUrl)).keys.map((key) => key['alg'])).toEqual(['ES256']);
        const before = await verifyFailures(esOnly.adminUrl);
        const error = await grpcError(esClient.verifyToken({ token }));
        expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(error.details).toBe('invalid token');
        expect(delta(before, await verifyFailures(esOnly.adminUrl))).toEqual({ algorithm: 1 });
      } finally {
        esClient.close();
      }
    } finally {
      await esDb[Symbol.asyncDispose]();
    }
  });
});
