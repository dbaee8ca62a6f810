import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { decodeToken, delta, fetchJwks, jwksKids, sidecarVerify, signingKeyRows, verifyFailures, waitFor, type JwksResponse } from '../helpers/jwt.js';
import { runCli } from '../helpers/process.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ISSUER = 'https://identity.rotation.test';
const AUDIENCE = 'rotation-test';
// Real time for the CLI (which starts slowly on a busy machine); the replicas' clock is moved
// past activation and removal instead of waiting for them.
const LEAD_SECONDS = 600;
const TTL_SECONDS = 900;
const SKEW_SECONDS = 5;
const PASSWORD = 'correct horse battery';
// The CLI runs as its own node + tsx process, which takes many seconds to start on a loaded machine.
const CLI_TIMEOUT_MS = 120_000;
const CLI_TEST_TIMEOUT_MS = 300_000;

let db: TestDatabase;
let env: Record<string, string>;
/** Two replicas on one database, sharing a clock the test can move forward. */
let replicas: { service: TestService; client: GrpcIdentityClient }[];
let clockOffsetMs = 0;
const clock = { now: () => new Date(Date.now() + clockOffsetMs) };
let email: string;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, {
    TOKEN_ISSUER: ISSUER,
    TOKEN_AUDIENCE: AUDIENCE,
    TOKEN_TTL_SECONDS: String(TTL_SECONDS),
    TOKEN_CLOCK_SKEW_SECONDS: String(SKEW_SECONDS),
    KEY_PUBLISH_LEAD_SECONDS: String(LEAD_SECONDS),
    KEY_REFRESH_SECONDS: '1',
  });
  // Started together on a new database: they race to create the first key, and must agree on it.
  const services = await Promise.all([startTestService(env, { clock }), startTestService(env, { clock })]);
  replicas = services.map((service) => ({ service, client: new GrpcIdentityClient(service.url) }));
  email = `rotation.${Date.now()}.${randomBytes(3).toString('hex')}@example.com`;
  await replicas[0]!.client.registerUser({ email, password: PASSWORD, first_name: 'Ro', last_name: 'Tate' });
});

afterAll(async () => {
  for (const { service, client } of replicas ?? []) {
    client.close();
    await service[Symbol.asyncDispose]();
  }
  await db?.[Symbol.asyncDispose]();
});

const cli = (...args: string[]) => runCli(args, { ...env, LOG_LEVEL: 'error' }, CLI_TIMEOUT_MS);
const tokenFrom = async (replica: number): Promise<string> => (await replicas[replica]!.client.authenticate({ email, password: PASSWORD }))['access_token'];
const kidOf = (token: string) => decodeToken(token).header['kid'] as string;
const sidecar = (token: string, jwks: JwksResponse) => sidecarVerify(token, jwks.keys, { issuer: ISSUER, audience: AUDIENCE, now: clock.now(), leewaySeconds: SKEW_SECONDS });

/** Every token verifies on every replica, and with the JWKS of every replica. */
async function expectVerifiedEverywhere(tokens: readonly string[]): Promise<void> {
  for (const { service, client } of replicas) {
    const jwks = await fetchJwks(service.adminUrl);
    for (const token of tokens) {
      await expect(client.verifyToken({ token }), `${kidOf(token)} on ${service.url}`).resolves.toHaveProperty('user_id');
      expect(() => sidecar(token, jwks)).not.toThrow();
    }
  }
}

async function expectSameJwks(): Promise<JwksResponse> {
  const [first, second] = await Promise.all(replicas.map(({ service }) => fetchJwks(service.adminUrl)));
  expect(second!.text).toBe(first!.text);
  expect(second!.headers.get('etag')).toBe(first!.headers.get('etag'));
  return first!;
}

interface ListedKey {
  kid: string;
  alg: string;
  state: string;
  activatesAt: string;
  retiresAt: string | null;
  removesAt: string | null;
}

async function listKeys(): Promise<ListedKey[]> {
  const listed = await cli('keys', 'list');
  expect(listed.code, listed.stderr).toBe(0);
  return JSON.parse(listed.stdout) as ListedKey[];
}

describe('key rotation end to end, on two replicas of one database', () => {
  let oldKid: string;
  let newKid: string;
  let activatesAt: number;
  const before: string[] = [];
  const during: string[] = [];
  let jwksDuringLead: JwksResponse;

  it('starts with both replicas signing with the same key and serving the same JWKS', async () => {
    before.push(await tokenFrom(0), await tokenFrom(1));
    oldKid = kidOf(before[0]!);
    expect(kidOf(before[1]!)).toBe(oldKid);
    expect((await expectSameJwks()).keys.map((key) => key['kid'])).toEqual([oldKid]);
    await expectVerifiedEverywhere(before);
    expect(await listKeys()).toEqual([expect.objectContaining({ kid: oldKid, alg: 'ES256', state: 'active', retiresAt: null, removesAt: null })]);
  }, CLI_TEST_TIMEOUT_MS);

  it('`keys rotate` publishes a pending key; a second rotate while it is pending fails with exit code 1', async () => {
    const startedAt = Date.now();
    const rotated = await cli('keys', 'rotate');
    expect(rotated.code, rotated.stderr).toBe(0);
    const output = JSON.parse(rotated.stdout) as { kid: string; alg: string; state: string; activatesAt: string };
    expect(output).toMatchObject({ alg: 'ES256', state: 'pending' });
    newKid = output.kid;
    expect(newKid).not.toBe(oldKid);
    activatesAt = Date.parse(output.activatesAt);
    expect(activatesAt).toBeGreaterThanOrEqual(startedAt + LEAD_SECONDS * 1000);
    expect(activatesAt).toBeLessThanOrEqual(Date.now() + LEAD_SECONDS * 1000);

    const [again, listed] = await Promise.all([cli('keys', 'rotate'), listKeys()]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr.trim()).toBe(`identity: key ${newKid} is already pending and becomes active at ${output.activatesAt}`);
    expect(listed).toEqual([
      expect.objectContaining({ kid: oldKid, state: 'active', retiresAt: output.activatesAt }),
      expect.objectContaining({ kid: newKid, alg: 'ES256', state: 'pending', activatesAt: output.activatesAt, retiresAt: null, removesAt: null }),
    ]);
    expect(Date.parse(listed[0]!.removesAt!)).toBe(activatesAt + (TTL_SECONDS + SKEW_SECONDS) * 1000);
    expect((await signingKeyRows(db.knex)).map((row) => row.kid)).toEqual([oldKid, newKid]);
  }, CLI_TEST_TIMEOUT_MS);

  it('publishes the new key on every replica before it signs anything', async () => {
    for (const { service } of replicas) await waitFor(async () => (await jwksKids(service.adminUrl)).includes(newKid), 'the pending key in the JWKS');
    jwksDuringLead = await expectSameJwks();
    expect(jwksDuringLead.keys.map((key) => key['kid'])).toEqual([oldKid, newKid]);
    during.push(await tokenFrom(0), await tokenFrom(1));
    // Up to the last second of the lead time.
    clockOffsetMs = activatesAt - Date.now() - 1_000;
    during.push(await tokenFrom(0), await tokenFrom(1));
    expect(during.map(kidOf)).toEqual([oldKid, oldKid, oldKid, oldKid]);
    expect(Math.max(...during.map((token) => Number(decodeToken(token).claims['iat'])))).toBeLessThan(activatesAt / 1000);
    await expectVerifiedEverywhere([...before, ...during]);
  });

  it('signs with the new key after the lead time, and every token, old and new, verifies', async () => {
    clockOffsetMs = activatesAt - Date.now() + 1_000;
    const after = [await tokenFrom(0), await tokenFrom(1)];
    expect(after.map(kidOf)).toEqual([newKid, newKid]);
    await expectVerifiedEverywhere([...before, ...during, ...after]);
    // A sidecar that last fetched the JWKS during the lead time already knows the new key.
    for (const token of after) expect(() => sidecar(token, jwksDuringLead)).not.toThrow();
    expect((await expectSameJwks()).keys.map((key) => key['kid'])).toEqual([oldKid, newKid]);
  });

  it('refuses a token once it has expired beyond the skew, though it was verified (and cached) before', async () => {
    const token = before[0]!;
    const exp = Number(decodeToken(token).claims['exp']);
    clockOffsetMs = (exp + SKEW_SECONDS - 2) * 1000 - Date.now();
    // Twice: a token is remembered on its second check.
    await expectVerifiedEverywhere([token, token]);
    clockOffsetMs = (exp + SKEW_SECONDS + 1) * 1000 - Date.now();
    for (const { service, client } of replicas) {
      expect(await jwksKids(service.adminUrl)).toContain(oldKid);
      const counted = await verifyFailures(service.adminUrl);
      expect((await grpcError(client.verifyToken({ token }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(delta(counted, await verifyFailures(service.adminUrl))).toEqual({ expired: 1 });
    }
  });

  it('removes the old key once its last token has expired: it leaves the JWKS and its tokens are refused', async () => {
    const [removesAt] = (await signingKeyRows(db.knex)).filter((row) => row.kid === oldKid).map((row) => row.removes_at!.getTime());
    clockOffsetMs = removesAt! - Date.now() + 1_000;
    for (const { service } of replicas) await waitFor(async () => !(await jwksKids(service.adminUrl)).includes(oldKid), 'the old key to leave the JWKS');
    expect((await expectSameJwks()).keys.map((key) => key['kid'])).toEqual([newKid]);

    for (const { service, client } of replicas) {
      for (const token of [...before, ...during]) {
        const counted = await verifyFailures(service.adminUrl);
        const error = await grpcError(client.verifyToken({ token }));
        expect(error.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(delta(counted, await verifyFailures(service.adminUrl))).toEqual({ unknown_key: 1 });
      }
    }
    // The row, private key included, is deleted by the next key cycle of either replica (the JWKS
    // drops a removed key at once, from its times; the delete may come a cycle later); the new key
    // signs and verifies on.
    await waitFor(async () => (await listKeys()).every(({ kid }) => kid !== oldKid), 'the old key row to be deleted');
    expect((await listKeys()).map(({ kid }) => kid)).toEqual([newKid]);
    const fresh = [await tokenFrom(0), await tokenFrom(1)];
    expect(fresh.map(kidOf)).toEqual([newKid, newKid]);
    await expectVerifiedEverywhere(fresh);
  }, CLI_TEST_TIMEOUT_MS);
});
