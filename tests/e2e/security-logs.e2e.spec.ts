import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyEncryption } from '../../src/infrastructure/tokens/key-encryption.js';
import { connectClient, grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * The log stream of a whole session (register, login, bad login, throttle, verify, bad
 * token, invalid input) at debug level holds no password, hash, token or key material, shows
 * emails only masked, and has exactly one audit line per security event.
 */

const logs = captureLogs();
let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let client: GrpcIdentityClient;

const CLIENT = '203.0.113.50';
const OTHER_CLIENT = '198.51.100.77';
const metadata = { 'x-forwarded-for': CLIENT };

const ANN = { email: 'ann.lee.logs@example.com', password: 'Ann-secret-Zebra-7731' };
const BOB = { email: 'Bob.Marsh.Logs@Example.org', password: 'Bob-secret-Quartz-4412' };
const WRONG_PASSWORDS = ['Wrong-guess-Falcon-001', 'Wrong-guess-Falcon-002', 'Wrong-guess-Falcon-003', 'Wrong-guess-Falcon-004'];
const UNKNOWN = 'zed.unknown.logs@example.net';
const REFUSED_PASSWORD = 'Refused-73-bytes-'.padEnd(73, 'y');

/** What the session produced that must not be logged. */
const secrets: { tokens: string[]; refreshTokens: string[]; userIds: Record<string, string> } = { tokens: [], refreshTokens: [], userIds: {} };

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { LOG_LEVEL: 'debug', TRUST_PROXY: 'true', LOGIN_FREE_ATTEMPTS: '2', LOGIN_CLIENT_FREE_ATTEMPTS: '100' });
  service = await startTestService(env, { logDestination: logs.destination });
  client = new GrpcIdentityClient(service.url);

  // Register (grpc-js and Connect), a duplicate, and invalid registrations.
  const ann = await client.registerUser({ email: ANN.email, password: ANN.password, first_name: 'Ann', last_name: 'Lee' }, { metadata });
  secrets.userIds['ann'] = ann['user']['id'];
  const bob = await connectClient(service.url).registerUser(
    { email: BOB.email, password: BOB.password, firstName: 'Bob', lastName: 'Marsh' },
    { headers: { 'x-forwarded-for': OTHER_CLIENT } },
  );
  secrets.userIds['bob'] = bob.user!.id;
  expect((await grpcError(client.registerUser({ email: ANN.email.toUpperCase(), password: ANN.password, first_name: 'A', last_name: 'L' }, { metadata }))).code).toBe(grpc.status.ALREADY_EXISTS);
  for (const bad of [
    { email: 'not-an-email', password: ANN.password, first_name: 'A', last_name: 'L' },
    { email: 'carl.logs@example.com', password: REFUSED_PASSWORD, first_name: 'Carl', last_name: 'L' },
    { email: 'dora.logs@example.com', password: 'Dora-secret-ok-99', first_name: 'Do\u0000ra', last_name: 'L' },
  ]) {
    expect((await grpcError(client.registerUser(bad, { metadata }))).code).toBe(grpc.status.INVALID_ARGUMENT);
  }

  // Log in, fail, get throttled (LOGIN_FREE_ATTEMPTS=2).
  const login = await client.authenticate(ANN, { metadata });
  secrets.tokens.push(login['access_token']);
  const connectLogin = await connectClient(service.url).authenticate(BOB, { headers: { 'x-forwarded-for': OTHER_CLIENT } });
  secrets.tokens.push(connectLogin.accessToken);
  expect((await grpcError(client.authenticate({ email: ANN.email, password: WRONG_PASSWORDS[0]! }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect((await grpcError(client.authenticate({ email: UNKNOWN, password: WRONG_PASSWORDS[1]! }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect((await grpcError(client.authenticate({ email: BOB.email, password: WRONG_PASSWORDS[2]! }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect((await grpcError(client.authenticate({ email: BOB.email, password: WRONG_PASSWORDS[3]! }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect((await grpcError(client.authenticate({ email: BOB.email, password: BOB.password }, { metadata }))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect((await grpcError(client.authenticate({ email: ANN.email, password: '' }, { metadata }))).code).toBe(grpc.status.INVALID_ARGUMENT);

  // Verify good and bad tokens.
  for (const token of secrets.tokens) await client.verifyToken({ token });
  const [header, payload, signature] = secrets.tokens[0]!.split('.');
  const tampered = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
  const forged = `${header}.${Buffer.from(JSON.stringify({ sub: secrets.userIds['bob'] })).toString('base64url')}.${signature}`;
  for (const token of [tampered, forged, 'not.a.token', '']) {
    const error = await connectClient(service.url)
      .verifyToken({ token })
      .catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect([Code.Unauthenticated, Code.InvalidArgument]).toContain((error as ConnectError).code);
  }
  secrets.tokens.push(tampered, forged);

  // Sessions: rotate, reuse (which revokes the session), log out; refresh tokens in every role.
  const login2 = await client.authenticate(ANN, { metadata });
  const rotated = await client.refreshToken({ refresh_token: login2['refresh_token'] }, { metadata });
  expect((await grpcError(client.refreshToken({ refresh_token: login2['refresh_token'] }, { metadata }))).code).toBe(grpc.status.UNAUTHENTICATED);
  expect((await grpcError(client.verifyToken({ token: rotated['access_token'] }))).code).toBe(grpc.status.UNAUTHENTICATED);
  const login3 = await client.authenticate(ANN, { metadata });
  await client.logout({ refresh_token: login3['refresh_token'] }, { metadata });
  secrets.tokens.push(login2['access_token'], rotated['access_token'], login3['access_token']);
  secrets.refreshTokens.push(login2['refresh_token'], rotated['refresh_token'], login3['refresh_token']);
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const entries = () => logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
const masked = (email: string) => {
  const [local = '', domain = ''] = email.split('@');
  return `${local[0]!.toLowerCase()}***@${domain.toLowerCase()}`;
};

describe('the log stream of a full session', () => {
  it('is JSON lines at debug level, one per RPC at least', () => {
    const all = entries();
    expect(all.length).toBeGreaterThan(20);
    expect(all.filter((entry) => entry['msg'] === 'rpc').length).toBeGreaterThanOrEqual(18);
    // Nothing went wrong unexpectedly (a failure there could have logged its cause).
    expect(all.filter((entry) => entry['msg'] === 'rpc failed')).toEqual([]);
  });

  it('holds no password, not even a wrong or refused one', () => {
    const text = logs.text();
    for (const password of [ANN.password, BOB.password, ...WRONG_PASSWORDS, REFUSED_PASSWORD, 'Dora-secret-ok-99']) {
      expect(text).not.toContain(password);
    }
  });

  it('holds no bcrypt hash', async () => {
    const text = logs.text();
    expect(text).not.toMatch(/\$2[aby]?\$\d\d\$/);
    const hashes = (await db.knex('users').pluck('password_hash')) as string[];
    expect(hashes).toHaveLength(2);
    for (const hash of hashes) {
      expect(text).not.toContain(hash);
      expect(text).not.toContain(hash.slice(7)); // salt and digest without the prefix
    }
  });

  it('holds no issued token, nor its signature', () => {
    const text = logs.text();
    expect(secrets.tokens.length).toBeGreaterThanOrEqual(4);
    for (const token of secrets.tokens) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.split('.')[2]!);
    }
    expect(text).not.toMatch(/eyJ[\w-]{10,}\.[\w-]{10,}\./); // no JWS compact form at all
  });

  it('holds no refresh token, current, consumed or logged out (issue 13)', () => {
    const text = logs.text();
    expect(secrets.refreshTokens).toHaveLength(3);
    for (const token of secrets.refreshTokens) expect(text).not.toContain(token);
  });

  it('holds no private key material or key encryption key', async () => {
    const text = logs.text();
    const kek = env['KEY_ENCRYPTION_KEY']!;
    expect(text).not.toContain(kek);
    expect(text).not.toContain(Buffer.from(kek, 'base64').toString('hex'));
    expect(text).not.toMatch(/PRIVATE KEY/);
    const rows: { kid: string; private_key_encrypted: Buffer }[] = await db.knex('signing_keys').select('kid', 'private_key_encrypted');
    expect(rows.length).toBeGreaterThan(0);
    const encryption = new KeyEncryption(Buffer.from(kek, 'base64'));
    for (const { kid, private_key_encrypted: sealed } of rows) {
      const jwk = JSON.parse(encryption.decrypt(kid, Buffer.from(sealed)).toString('utf8')) as { d?: string };
      expect(jwk.d).toBeTruthy();
      expect(text).not.toContain(jwk.d!);
      expect(text).not.toContain(Buffer.from(sealed).toString('base64'));
      expect(text).not.toContain(Buffer.from(sealed).toString('hex'));
    }
  });

  it('shows emails only masked (j***@example.com)', () => {
    const text = logs.text();
    const emails = [ANN.email, BOB.email, UNKNOWN, 'carl.logs@example.com', 'dora.logs@example.com'];
    for (const email of emails) {
      expect(text).not.toContain(email);
      expect(text.toLowerCase()).not.toContain(email.toLowerCase());
      expect(text.toLowerCase()).not.toContain(email.split('@')[0]!.toLowerCase());
    }
    for (const email of [ANN.email, BOB.email, UNKNOWN]) expect(text.toLowerCase()).toContain(masked(email));
  });

  it('has one audit line per register, login success, login failure and throttle, with user id, client address and outcome', () => {
    const audit = entries().filter((entry) => entry['audit'] === true);
    // Register masks the address as stored, login the lookup key (lower case): compare without case.
    const simplified = audit.map(({ action, outcome, userId, clientAddress, email }) => ({ action, outcome, userId, clientAddress, email: String(email).toLowerCase() }));
    const { ann, bob } = secrets.userIds;
    expect(simplified).toEqual([
      { action: 'register', outcome: 'success', userId: ann, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'register', outcome: 'success', userId: bob, clientAddress: OTHER_CLIENT, email: masked(BOB.email) },
      { action: 'register', outcome: 'rejected', userId: undefined, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'login', outcome: 'success', userId: ann, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'login', outcome: 'success', userId: bob, clientAddress: OTHER_CLIENT, email: masked(BOB.email) },
      { action: 'login', outcome: 'failure', userId: ann, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'login', outcome: 'failure', userId: undefined, clientAddress: CLIENT, email: masked(UNKNOWN) },
      { action: 'login', outcome: 'failure', userId: bob, clientAddress: CLIENT, email: masked(BOB.email) },
      { action: 'login', outcome: 'failure', userId: bob, clientAddress: CLIENT, email: masked(BOB.email) },
      { action: 'login', outcome: 'throttled', userId: undefined, clientAddress: CLIENT, email: masked(BOB.email) },
      { action: 'login', outcome: 'success', userId: ann, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'refresh', outcome: 'reuse_detected', userId: ann, clientAddress: CLIENT, email: 'undefined' },
      { action: 'login', outcome: 'success', userId: ann, clientAddress: CLIENT, email: masked(ANN.email) },
      { action: 'logout', outcome: 'success', userId: ann, clientAddress: CLIENT, email: 'undefined' },
    ]);
    for (const line of audit) expect(line['level']).toBe(30);
  });

  it('logs why a token was refused, without the token', () => {
    const refusals = entries().filter((entry) => entry['msg'] === 'token refused');
    expect(refusals.length).toBeGreaterThanOrEqual(3);
    for (const refusal of refusals) expect(Object.keys(refusal)).not.toContain('token');
  });
});
