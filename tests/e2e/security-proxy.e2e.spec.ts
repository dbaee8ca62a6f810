import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * x-forwarded-for from hostile callers (TRUST_PROXY=true): the client address is proxy-addr's
 * walk over TRUSTED_PROXIES, so rotating the header does not reset the per-client throttle,
 * and a huge header is an ordinary request (it used to reach the throttle table as the key
 * and answer INTERNAL: `index row requires 9024 bytes`).
 */

let db: TestDatabase;
/** The test's peer, 127.0.0.1, is not a trusted proxy here: its header is ignored. */
let untrustedPeer: TestService;
/** Default TRUSTED_PROXIES: the peer (loopback) is the sidecar, whose last entry is the client. */
let behindSidecar: TestService;
const logs = captureLogs();
const clients: GrpcIdentityClient[] = [];

const PASSWORD = 'proxy walk password 42';
const WRONG = 'not the proxy password 42';
const HUGE = 'x'.repeat(9_000);
const { UNAUTHENTICATED, RESOURCE_EXHAUSTED } = grpc.status;
const THREE_FAILURES_THEN_THROTTLED = [UNAUTHENTICATED, UNAUTHENTICATED, UNAUTHENTICATED, RESOURCE_EXHAUSTED, RESOURCE_EXHAUSTED];

beforeAll(async () => {
  db = await createTestDatabase();
  const base = testEnv(db);
  const env = (extra: Record<string, string>) => ({
    ...testEnv(db, { TRUST_PROXY: 'true', LOGIN_FREE_ATTEMPTS: '100', LOGIN_CLIENT_FREE_ATTEMPTS: '3', ...extra }),
    KEY_ENCRYPTION_KEY: base['KEY_ENCRYPTION_KEY']!,
  });
  untrustedPeer = await startTestService(env({ TRUSTED_PROXIES: '10.0.0.0/8' }));
  behindSidecar = await startTestService(env({ LOG_LEVEL: 'info' }), { logDestination: logs.destination });
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const service of [behindSidecar, untrustedPeer]) await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

beforeEach(async () => {
  await db.knex('login_attempts').delete();
});

const clientOf = (service: TestService) => {
  const client = new GrpcIdentityClient(service.url);
  clients.push(client);
  return client;
};

let counter = 0;
const uniqueEmail = (prefix: string) => `${prefix}.${Date.now()}.${++counter}@example.com`;

/** The gRPC code of one Authenticate with the given x-forwarded-for. */
async function loginCode(client: GrpcIdentityClient, email: string, password: string, forwardedFor: string): Promise<grpc.status> {
  try {
    await client.authenticate({ email, password }, { metadata: { 'x-forwarded-for': forwardedFor } });
    return grpc.status.OK;
  } catch (error) {
    return (error as grpc.ServiceError).code;
  }
}

const clientKeys = async () => (await db.knex('login_attempts').where('key', 'like', 'client:%').orderBy('key').pluck('key')) as string[];

describe('rotating x-forwarded-for does not bypass the per-client throttle (LOGIN_CLIENT_FREE_ATTEMPTS=3)', () => {
  it('from an untrusted peer the header is ignored: the peer is counted', async () => {
    const client = clientOf(untrustedPeer);
    const codes: grpc.status[] = [];
    for (let i = 1; i <= 5; i++) codes.push(await loginCode(client, uniqueEmail('rotate'), WRONG, `192.0.2.${i}`));
    expect(codes).toEqual(THREE_FAILURES_THEN_THROTTLED);
    expect(await clientKeys()).toEqual(['client:127.0.0.1']);
  });

  it('behind a trusted sidecar, entries the client prepends are never reached: the address the sidecar appended is counted', async () => {
    const client = clientOf(behindSidecar);
    const codes: grpc.status[] = [];
    for (let i = 1; i <= 5; i++) codes.push(await loginCode(client, uniqueEmail('prepend'), WRONG, `192.0.2.${i}, 198.51.100.${i}, 203.0.113.50`));
    expect(codes).toEqual(THREE_FAILURES_THEN_THROTTLED);
    expect(await clientKeys()).toEqual(['client:203.0.113.50']);
  });
});

describe('a 9,000-character x-forwarded-for', () => {
  it('gets ordinary answers from an untrusted and a trusted peer, never INTERNAL', async () => {
    for (const service of [untrustedPeer, behindSidecar]) {
      const client = clientOf(service);
      const email = uniqueEmail('huge');
      const metadata = { 'x-forwarded-for': HUGE };
      await client.registerUser({ email, password: PASSWORD, first_name: 'Huge', last_name: 'Header' }, { metadata });
      expect((await grpcError(client.authenticate({ email, password: WRONG }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await client.authenticate({ email, password: PASSWORD }, { metadata }))['access_token']).toEqual(expect.any(String));
    }
    // The garbage stopped the walk at the sidecar, which passed it on: the sidecar is the client.
    expect(await clientKeys()).toEqual(['client:127.0.0.1']);
  });

  it('is not copied into the logs: every line stays short and the audit names an IP address', async () => {
    logs.lines.length = 0; // this test's lines only
    const client = clientOf(behindSidecar);
    const email = uniqueEmail('hugelog');
    await client.registerUser({ email, password: PASSWORD, first_name: 'Huge', last_name: 'Log' }, { metadata: { 'x-forwarded-for': `${HUGE}, 203.0.113.9` } });
    expect((await grpcError(client.authenticate({ email, password: WRONG }, { metadata: { 'x-forwarded-for': HUGE } }))).code).toBe(grpc.status.UNAUTHENTICATED);
    await expect.poll(() => logs.lines.filter((line) => line.includes('"audit":true')).length).toBeGreaterThanOrEqual(2);
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(Math.max(...logs.lines.map((line) => line.length))).toBeLessThan(2_000);
    expect(logs.text()).not.toContain('xxxxxxxxxx');
    const audit = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['audit'] === true);
    expect(audit.map((line) => [line['action'], line['clientAddress']])).toEqual([
      ['register', '203.0.113.9'],
      ['login', '127.0.0.1'],
    ]);
  });
});
