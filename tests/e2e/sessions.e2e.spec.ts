import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionRevokedReason, SessionRevokedSchema, UserPasswordChangedSchema } from '../../src/gen/identity/v1/events_pb.js';
import { UserStatus } from '../../src/gen/identity/v1/identity_pb.js';
import { BadRequestSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { connectClient, grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';
import { connectError, manualClock, verifyOutcome } from '../helpers/sessions.js';

/**
 * Issue 13: sessions, rotating refresh tokens, logout, password change, GetUser and
 * BatchGetUsers, through the real server over HTTP/2 (Connect-ES and grpc-js).
 */

const logs = captureLogs();
let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let client: ReturnType<typeof connectClient>;
/** Every refresh token the service handed out in this file. */
const issuedRefreshTokens: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { LOG_LEVEL: 'debug', LOGIN_FREE_ATTEMPTS: '3' });
  service = await startTestService(env, { logDestination: logs.destination });
  client = connectClient(service.url, 'grpc');
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

let counter = 0;
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'purple monkey dishwasher';

async function registered(prefix = 'session') {
  const email = `${prefix}.${Date.now()}.${++counter}@example.com`;
  const { user } = await client.registerUser({ email, password: PASSWORD, firstName: 'Ses', lastName: 'Sion' });
  return { email, user: user! };
}

async function login(email: string, password = PASSWORD) {
  const response = await client.authenticate({ email, password });
  issuedRefreshTokens.push(response.refreshToken);
  return response;
}

async function refresh(refreshToken: string) {
  const response = await client.refreshToken({ refreshToken });
  issuedRefreshTokens.push(response.refreshToken);
  return response;
}

const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('Authenticate opens a session', () => {
  it('returns a refresh token, its expiry and the session id, which the access token carries as sid', async () => {
    const { email } = await registered();
    const auth = await login(email);
    expect(auth.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(auth.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/); // base64url of 32 bytes
    expect(claims(auth.accessToken)['sid']).toBe(auth.sessionId);
    const lifetime = timestampDate(auth.expiresAt!).getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(880_000); // TOKEN_TTL_SECONDS defaults to 900
    expect(lifetime).toBeLessThanOrEqual(900_000);
    expect(timestampDate(auth.refreshExpiresAt!).getTime()).toBeGreaterThan(Date.now() + 13 * 86_400_000);
    const verified = await client.verifyToken({ token: auth.accessToken });
    expect(verified.sessionId).toBe(auth.sessionId);
    const row = await db.knex('sessions').where({ id: auth.sessionId }).first();
    expect(row).toMatchObject({ revoked_at: null, client_address: expect.any(String) });
  });
});

describe('RefreshToken', () => {
  it('rotates: a new pair for the same session, and the old refresh token is consumed', async () => {
    const { email } = await registered();
    const auth = await login(email);
    const first = await refresh(auth.refreshToken);
    expect(first.sessionId).toBe(auth.sessionId);
    expect(first.refreshToken).not.toBe(auth.refreshToken);
    expect(first.tokenType).toBe('Bearer');
    expect(claims(first.accessToken)['sid']).toBe(auth.sessionId);
    expect(await verifyOutcome(client, first.accessToken)).toBe('ok');
    const second = await refresh(first.refreshToken);
    expect(second.sessionId).toBe(auth.sessionId);
    expect(await verifyOutcome(client, second.accessToken)).toBe('ok');
  });

  it('reuse of a consumed token revokes the session: the old and the newest refresh token are dead, its access tokens refused', async () => {
    const { email, user } = await registered();
    const auth = await login(email);
    const first = await refresh(auth.refreshToken);
    const second = await refresh(first.refreshToken);
    expect(await verifyOutcome(client, second.accessToken)).toBe('ok');

    // The token consumed two rotations ago comes back: a stolen copy.
    const reuse = await connectError(client.refreshToken({ refreshToken: auth.refreshToken }));
    expect(reuse.code).toBe(Code.Unauthenticated);
    expect(reuse.rawMessage).toBe('invalid refresh token');

    for (const token of [auth.refreshToken, first.refreshToken, second.refreshToken]) {
      expect((await connectError(client.refreshToken({ refreshToken: token }))).code).toBe(Code.Unauthenticated);
    }
    for (const token of [auth.accessToken, first.accessToken, second.accessToken]) {
      await expect.poll(() => verifyOutcome(client, token), { timeout: 1_000 }).toBe('Unauthenticated');
    }
    const row = await db.knex('sessions').where({ id: auth.sessionId }).first();
    expect(row.revoked_reason).toBe('refresh_token_reused');
    const events = await db.knex('outbox').where({ aggregate_id: user.id, event_type: 'identity.v1.SessionRevoked' });
    expect(events).toHaveLength(1);
    const event = fromBinary(SessionRevokedSchema, events[0].payload);
    expect(event).toMatchObject({ userId: user.id, sessionId: auth.sessionId, reason: SessionRevokedReason.REFRESH_TOKEN_REUSED, eventId: events[0].event_id });
    expect(await metric('refresh_token_reuse_detected_total')).toBeGreaterThanOrEqual(1);
    expect(await metric('token_verify_failures_total{reason="revoked"}')).toBeGreaterThanOrEqual(3);
  });

  it('two concurrent refreshes with one token: exactly one wins, the loser counts as reuse', async () => {
    for (let round = 0; round < 5; round++) {
      const { email } = await registered('race');
      const auth = await login(email);
      const results = await Promise.allSettled([refresh(auth.refreshToken), refresh(auth.refreshToken)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      // The loser presented a consumed token: the session is revoked, the winner's pair with it.
      const row = await db.knex('sessions').where({ id: auth.sessionId }).first();
      expect(row.revoked_reason).toBe('refresh_token_reused');
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof refresh>>>).value;
      expect((await connectError(client.refreshToken({ refreshToken: winner.refreshToken }))).code).toBe(Code.Unauthenticated);
      await expect.poll(() => verifyOutcome(client, winner.accessToken), { timeout: 1_000 }).toBe('Unauthenticated');
    }
  });

  it('refuses an unknown, malformed or empty token without revoking anything', async () => {
    const before = await db.knex('sessions').whereNotNull('revoked_at').count<{ count: string }[]>('* as count');
    expect((await connectError(client.refreshToken({ refreshToken: 'A'.repeat(43) }))).code).toBe(Code.Unauthenticated);
    expect((await connectError(client.refreshToken({ refreshToken: 'x'.repeat(5000) }))).code).toBe(Code.Unauthenticated);
    const empty = await connectError(client.refreshToken({ refreshToken: '' }));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(empty.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(['refresh_token']);
    const after = await db.knex('sessions').whereNotNull('revoked_at').count<{ count: string }[]>('* as count');
    expect(after[0]!.count).toBe(before[0]!.count);
  });

  it('a disabled user cannot refresh', async () => {
    const { email, user } = await registered();
    const auth = await login(email);
    await db.knex('users').where({ id: user.id }).update({ status: 'disabled', updated_at: new Date() });
    expect((await connectError(client.refreshToken({ refreshToken: auth.refreshToken }))).code).toBe(Code.Unauthenticated);
    // ... and its access tokens are refused, whoever disabled it (here: SQL, through the trigger).
    await expect.poll(() => verifyOutcome(client, auth.accessToken), { timeout: 1_000 }).toBe('Unauthenticated');
  });
});

describe('Logout', () => {
  it('is idempotent and ends only its own session: another session of the same user is unaffected', async () => {
    const { email, user } = await registered();
    const phone = await login(email);
    const laptop = await login(email);
    expect(phone.sessionId).not.toBe(laptop.sessionId);

    await client.logout({ refreshToken: phone.refreshToken });
    await client.logout({ refreshToken: phone.refreshToken });
    await client.logout({ refreshToken: 'B'.repeat(43) }); // unknown: fine
    expect((await connectError(client.logout({ refreshToken: '' }))).code).toBe(Code.InvalidArgument);

    expect((await connectError(client.refreshToken({ refreshToken: phone.refreshToken }))).code).toBe(Code.Unauthenticated);
    await expect.poll(() => verifyOutcome(client, phone.accessToken), { timeout: 1_000 }).toBe('Unauthenticated');

    expect(await verifyOutcome(client, laptop.accessToken)).toBe('ok');
    const next = await refresh(laptop.refreshToken);
    expect(await verifyOutcome(client, next.accessToken)).toBe('ok');

    const events = await db.knex('outbox').where({ aggregate_id: user.id, event_type: 'identity.v1.SessionRevoked' });
    expect(events).toHaveLength(1); // the second logout changed nothing
    expect(fromBinary(SessionRevokedSchema, events[0].payload)).toMatchObject({ sessionId: phone.sessionId, reason: SessionRevokedReason.LOGOUT });
  });
});

describe('ChangePassword', () => {
  /** Code, message and details (type and bytes) of a Connect error: what a caller can see. */
  const visible = (error: Awaited<ReturnType<typeof connectError>>) => ({
    code: error.code,
    message: error.rawMessage,
    details: error.details.map((detail) => ('desc' in detail ? { type: detail.desc.typeName } : { type: detail.type, value: Buffer.from(detail.value).toString('hex') })),
  });

  it('fails exactly as Authenticate does (code, message, details) for a wrong password, an unknown email and a disabled user', async () => {
    const { email } = await registered('parity');
    const disabled = await registered('parity-disabled');
    await db.knex('users').where({ id: disabled.user.id }).update({ status: 'disabled' });
    const cases = [
      { email, password: 'wrong password here' },
      { email: `nobody.${Date.now()}@example.com`, password: PASSWORD },
      { email: disabled.email, password: PASSWORD },
    ];
    const seen = new Set<string>();
    for (const { email: address, password } of cases) {
      const viaAuthenticate = visible(await connectError(client.authenticate({ email: address, password })));
      const viaChange = visible(await connectError(client.changePassword({ email: address, currentPassword: password, newPassword: NEW_PASSWORD })));
      expect(viaChange).toEqual(viaAuthenticate);
      expect(viaChange.code).toBe(Code.Unauthenticated);
      seen.add(JSON.stringify(viaChange));
    }
    expect(seen.size).toBe(1);

    // And for grpc-js callers: the same status, details string and binary details trailer.
    const grpcClient = new GrpcIdentityClient(service.url);
    try {
      const other = await registered('parity-grpc');
      const a = await grpcError(grpcClient.authenticate({ email: other.email, password: 'wrong password here' }));
      const c = await grpcError(grpcClient.changePassword({ email: other.email, current_password: 'wrong password here', new_password: NEW_PASSWORD }));
      expect(c.code).toBe(grpc.status.UNAUTHENTICATED);
      expect([c.code, c.details]).toEqual([a.code, a.details]);
      expect(c.metadata.get('grpc-status-details-bin')).toEqual(a.metadata.get('grpc-status-details-bin'));
    } finally {
      grpcClient.close();
    }
  });

  it('shares the login throttle with Authenticate (LOGIN_FREE_ATTEMPTS=3)', async () => {
    const { email } = await registered('throttle');
    await connectError(client.changePassword({ email, currentPassword: 'wrong one 1', newPassword: NEW_PASSWORD }));
    await connectError(client.authenticate({ email, password: 'wrong one 2' }));
    await connectError(client.changePassword({ email, currentPassword: 'wrong one 3', newPassword: NEW_PASSWORD }));
    // The fourth attempt is throttled in either RPC, even with the right password.
    const viaAuthenticate = await connectError(client.authenticate({ email, password: PASSWORD }));
    const viaChange = await connectError(client.changePassword({ email, currentPassword: PASSWORD, newPassword: NEW_PASSWORD }));
    expect(viaAuthenticate.code).toBe(Code.ResourceExhausted);
    expect(viaChange.code).toBe(Code.ResourceExhausted);
  });

  it('puts the new password through the policy, before any attempt is counted', async () => {
    const { email } = await registered('policy');
    const error = await connectError(client.changePassword({ email, currentPassword: PASSWORD, newPassword: 'password1' }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations).toEqual([expect.objectContaining({ field: 'new_password', description: 'is too common' })]);
    const short = await connectError(client.changePassword({ email, currentPassword: '', newPassword: 'short' }));
    expect(short.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(['current_password', 'new_password']);
    expect(await db.knex('login_attempts').where({ key: `email:${email}` }).first()).toBeUndefined();
  });

  it('changes the password, revokes every session, sets tokens_valid_after and writes both events', async () => {
    const { email, user } = await registered('change');
    const one = await login(email);
    const two = await login(email);
    const { user: changed } = await client.changePassword({ email, currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(changed?.id).toBe(user.id);
    for (const session of [one, two]) {
      expect((await connectError(client.refreshToken({ refreshToken: session.refreshToken }))).code).toBe(Code.Unauthenticated);
      await expect.poll(() => verifyOutcome(client, session.accessToken), { timeout: 1_000 }).toBe('Unauthenticated');
    }
    expect((await connectError(client.authenticate({ email, password: PASSWORD }))).code).toBe(Code.Unauthenticated);
    const fresh = await login(email, NEW_PASSWORD);
    expect(await verifyOutcome(client, fresh.accessToken)).toBe('ok');

    const row = await db.knex('users').where({ id: user.id }).first();
    expect(row.tokens_valid_after).toBeInstanceOf(Date);
    const sessions = await db.knex('sessions').where({ user_id: user.id }).orderBy('created_at');
    expect(sessions.map((s: { revoked_reason: string | null }) => s.revoked_reason)).toEqual(['password_changed', 'password_changed', null]);
    const events = await db.knex('outbox').where({ aggregate_id: user.id }).orderBy('id');
    expect(events.map((e: { event_type: string }) => e.event_type)).toEqual(['identity.v1.UserRegistered', 'identity.v1.UserPasswordChanged', 'identity.v1.SessionRevoked']);
    expect(fromBinary(UserPasswordChangedSchema, events[1].payload)).toMatchObject({ userId: user.id, byAdmin: false });
    const revoked = fromBinary(SessionRevokedSchema, events[2].payload);
    expect(revoked).toMatchObject({ userId: user.id, sessionId: '', reason: SessionRevokedReason.PASSWORD_CHANGED });
    expect(timestampDate(revoked.tokensValidAfter!).getTime()).toBe(new Date(row.tokens_valid_after).getTime());
  });
});

describe('GetUser and BatchGetUsers', () => {
  it('GetUser answers the user, NOT_FOUND for an unknown id, INVALID_ARGUMENT for a malformed one', async () => {
    const { user } = await registered('get');
    const { user: got } = await client.getUser({ userId: user.id });
    expect(got).toMatchObject({ id: user.id, email: user.email, status: UserStatus.ACTIVE });
    expect((await client.getUser({ userId: user.id.toUpperCase() })).user?.id).toBe(user.id);
    expect((await connectError(client.getUser({ userId: '00000000-0000-4000-8000-000000000000' }))).code).toBe(Code.NotFound);
    const malformed = await connectError(client.getUser({ userId: 'not-a-uuid' }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(malformed.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(['user_id']);
  });

  it('BatchGetUsers answers found users in order and lists the missing ids; 1 to 100 well-formed ids', async () => {
    const a = await registered('batch');
    const b = await registered('batch');
    const unknown = '00000000-0000-4000-8000-000000000001';
    const { users, missingUserIds } = await client.batchGetUsers({ userIds: [b.user.id, unknown, a.user.id, b.user.id] });
    expect(users.map((u) => u.id)).toEqual([b.user.id, a.user.id]);
    expect(missingUserIds).toEqual([unknown]);

    expect((await connectError(client.batchGetUsers({ userIds: [] }))).code).toBe(Code.InvalidArgument);
    const tooMany = Array.from({ length: 101 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    expect((await connectError(client.batchGetUsers({ userIds: tooMany }))).code).toBe(Code.InvalidArgument);
    expect((await client.batchGetUsers({ userIds: tooMany.slice(0, 100) })).missingUserIds).toHaveLength(100);
    const malformed = await connectError(client.batchGetUsers({ userIds: [a.user.id, 'nope'] }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(malformed.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(['user_ids[1]']);
  });
});

describe('VerifyToken', () => {
  it('asks the database nothing per call: 2,000 calls (live and revoked sessions) cost no query', async () => {
    const { email } = await registered('no-query');
    const live = await login(email);
    const revoked = await login(email);
    await client.logout({ refreshToken: revoked.refreshToken });
    await expect.poll(() => verifyOutcome(client, revoked.accessToken), { timeout: 1_000 }).toBe('Unauthenticated');
    const queries: string[] = [];
    const count = (query: { sql: string }) => queries.push(query.sql);
    service.db.knex.on('query', count);
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 100; i++) {
        // 20 calls at a time, on one HTTP/2 connection.
        outcomes.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => verifyOutcome(client, (i + j) % 2 === 0 ? live.accessToken : revoked.accessToken)))));
      }
      expect(outcomes).toHaveLength(2_000);
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1_000);
      expect(outcomes.filter((o) => o === 'Unauthenticated')).toHaveLength(1_000);
    } finally {
      service.db.knex.off('query', count);
    }
    // What runs meanwhile is the background only: the readiness probe and migration check (every 2 s) and the
    // revocation resync (every 30 s); nothing that scales with the calls.
    expect(queries.filter((sql) => !/^select 1$|information_schema\.tables|from "knex_migrations|from "sessions"|from "users"/i.test(sql.trim()))).toEqual([]);
    expect(queries.length).toBeLessThan(20);
  });
});

describe('the raw refresh token', () => {
  it('is in no table column, log line or event', async () => {
    expect(issuedRefreshTokens.length).toBeGreaterThan(15);
    const tables = (await db.knex.raw<{ rows: { tablename: string }[] }>("select tablename from pg_tables where schemaname = 'public'")).rows.map((r) => r.tablename);
    expect(tables).toEqual(expect.arrayContaining(['sessions', 'refresh_tokens', 'outbox', 'users']));
    let dump = '';
    for (const table of tables) {
      const rows = (await db.knex.raw<{ rows: { row: string }[] }>(`select t::text as row from "${table}" t`)).rows;
      dump += rows.map((r) => r.row).join('\n');
    }
    // Payloads are bytea: search their bytes too.
    const payloads = Buffer.concat((await db.knex<{ payload: Buffer }>('outbox').select('payload')).map((r) => r.payload));
    const text = logs.text();
    for (const token of issuedRefreshTokens) {
      expect(dump).not.toContain(token);
      expect(payloads.includes(Buffer.from(token))).toBe(false);
      expect(payloads.includes(Buffer.from(token, 'base64url'))).toBe(false);
      expect(text).not.toContain(token);
    }
    // The table holds only the digests (32 bytes each).
    const hashes = await db.knex<{ token_hash: Buffer }>('refresh_tokens').select('token_hash');
    expect(hashes.length).toBeGreaterThanOrEqual(issuedRefreshTokens.length);
    expect(hashes.every((row) => row.token_hash.length === 32)).toBe(true);
  });
});

describe('session expiry (injected clock)', () => {
  it('ends a session SESSION_IDLE_SECONDS after its last refresh, and SESSION_MAX_SECONDS after login whatever the refreshes', async () => {
    const clock = manualClock();
    await using own = await startTestService({ ...env, LOG_LEVEL: 'silent', SESSION_IDLE_SECONDS: '120', SESSION_MAX_SECONDS: '300', TOKEN_TTL_SECONDS: '60' }, { clock });
    const ownClient = connectClient(own.url);
    const { email } = await registered('expiry');

    // Idle: 119 s after a refresh still good, 120 s not.
    const idle = await ownClient.authenticate({ email, password: PASSWORD });
    clock.advanceSeconds(119);
    const kept = await ownClient.refreshToken({ refreshToken: idle.refreshToken });
    expect(timestampDate(kept.refreshExpiresAt!).getTime()).toBe(clock.now().getTime() + 120_000);
    clock.advanceSeconds(120);
    expect((await connectError(ownClient.refreshToken({ refreshToken: kept.refreshToken }))).code).toBe(Code.Unauthenticated);

    // Absolute: refreshed every 100 s, it still ends 300 s after the login.
    const absolute = await ownClient.authenticate({ email, password: PASSWORD });
    let token = absolute.refreshToken;
    for (let at = 100; at < 300; at += 100) {
      clock.advanceSeconds(100);
      const next = await ownClient.refreshToken({ refreshToken: token });
      token = next.refreshToken;
      expect(timestampDate(next.refreshExpiresAt!).getTime()).toBeLessThanOrEqual(timestampDate(absolute.expiresAt!).getTime() + 300_000);
    }
    clock.advanceSeconds(100);
    expect((await connectError(ownClient.refreshToken({ refreshToken: token }))).code).toBe(Code.Unauthenticated);
    expect(await metric('refresh_tokens_total{outcome="expired"}', own.adminUrl)).toBe(2);
  });

  it('REFRESH_REUSE_GRACE_SECONDS accepts the token just replaced within the grace, and revokes after it', async () => {
    const clock = manualClock();
    await using own = await startTestService({ ...env, LOG_LEVEL: 'silent', REFRESH_REUSE_GRACE_SECONDS: '10' }, { clock });
    const ownClient = connectClient(own.url);
    const { email } = await registered('grace');
    const auth = await ownClient.authenticate({ email, password: PASSWORD });
    await ownClient.refreshToken({ refreshToken: auth.refreshToken });
    clock.advanceSeconds(5);
    const retried = await ownClient.refreshToken({ refreshToken: auth.refreshToken }); // a lost response, retried
    expect(retried.sessionId).toBe(auth.sessionId);
    clock.advanceSeconds(11);
    // Now the token replaced last time is `retried`'s predecessor; the first one is long consumed.
    expect((await connectError(ownClient.refreshToken({ refreshToken: auth.refreshToken }))).code).toBe(Code.Unauthenticated);
    expect((await db.knex('sessions').where({ id: auth.sessionId }).first()).revoked_reason).toBe('refresh_token_reused');
  });
});

async function metric(series: string, adminUrl = service.adminUrl): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}
