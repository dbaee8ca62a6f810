import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SessionRevokedReason } from '../../src/gen/identity/v1/events_pb.js';
import { UserStatus } from '../../src/gen/identity/v1/identity_pb.js';
import { UserManagementService } from '../../src/gen/identity/v1/user_management_pb.js';
import { connectClient, type Protocol } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { managementClient, managementPort, userEvents } from '../helpers/management.js';
import { deleteStream } from '../helpers/nats.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';
import { connectError, verifyOutcome } from '../helpers/sessions.js';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';

/** Issue 14: UserManagementService on its own port (plaintext here; mTLS in management-tls.e2e). */

const NATS_URL = inject('natsUrl');
const PASSWORD = 'correct horse battery';
const UNKNOWN_ID = '0b5b3c1e-7f00-4e6f-9a55-3d1c2f4b8a01';
let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
const logs = captureLogs();

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100', MANAGEMENT_PORT: String(await managementPort()), LOG_LEVEL: 'info' });
  service = await startTestService(env, { logDestination: logs.destination });
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await deleteStream(NATS_URL, env['NATS_STREAM']!).catch(() => undefined);
  await db?.[Symbol.asyncDispose]();
});

const api = () => connectClient(service.url);
const admin = (protocol: Protocol = 'grpc') => managementClient(service.managementUrl!, protocol);
let serial = 0;
async function register(prefix = 'user') {
  const email = `${prefix}.${++serial}.${Date.now()}@example.com`;
  const { user } = await api().registerUser({ email, password: PASSWORD, firstName: 'Ann', lastName: 'Lee' });
  return { email, id: user!.id };
}
const events = (userId: string) => userEvents(NATS_URL, env['NATS_STREAM']!, userId);
const eventTypes = async (userId: string) => (await events(userId)).map((event) => event.type);
const outboxCount = async (userId: string, type: string) =>
  Number(((await db.knex('outbox').where({ aggregate_id: userId, event_type: type }).count({ n: '*' }).first()) as { n: string }).n);

describe('the management port', () => {
  it('serves UserManagementService over gRPC, gRPC-Web and Connect, and IdentityService is not on it', async () => {
    const { id } = await register();
    for (const protocol of ['grpc', 'grpc-web', 'connect'] as const) {
      const page = await admin(protocol).listUsers({ pageSize: 100 });
      expect(page.users.map((user) => user.id)).toContain(id);
    }
    const identityOnManagement = createClient(IdentityService, createGrpcTransport({ baseUrl: service.managementUrl! }));
    expect((await connectError(identityOnManagement.getUser({ userId: id }))).code).toBe(Code.Unimplemented);
  });

  it('answers reflection (buf curl lists its services and methods) and health for its own service', async () => {
    const buf = fileURLToPath(new URL('../../node_modules/.bin/buf', import.meta.url));
    const curl = (args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(buf, ['curl', '--http2-prior-knowledge', ...args], { timeout: 30_000 }, (error, stdout) => resolve({ code: error === null ? 0 : Number(error.code), stdout })),
      );
    const services = await curl(['--list-services', service.managementUrl!]);
    expect(services.code).toBe(0);
    expect(services.stdout.trim().split('\n').sort()).toEqual(['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', UserManagementService.typeName]);
    const methods = await curl(['--list-methods', service.managementUrl!]);
    expect(methods.stdout).toContain(`${UserManagementService.typeName}/RevokeUserSessions`);
    expect(methods.stdout).not.toContain('IdentityService');
    const health = await curl(['--protocol', 'grpc', '-d', JSON.stringify({ service: UserManagementService.typeName }), `${service.managementUrl!}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING' });
    const apiHealth = await curl(['--protocol', 'grpc', '-d', JSON.stringify({ service: UserManagementService.typeName }), `${service.url}/grpc.health.v1.Health/Check`]);
    expect(apiHealth.code).toBe(Code.NotFound * 8);
  });

  it('is never served on the API port: UNIMPLEMENTED there', async () => {
    const onApi = managementClient(service.url, 'grpc');
    expect((await connectError(onApi.listUsers({}))).code).toBe(Code.Unimplemented);
    expect((await connectError(managementClient(service.url, 'connect').deleteUser({ userId: UNKNOWN_ID }))).code).toBe(Code.Unimplemented);
  });

  it('writes one audit line per call naming the caller (the peer address without TLS), the method and the outcome', async () => {
    await connectError(admin().enableUser({ userId: UNKNOWN_ID }));
    const line = logs.lines.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry['audit'] === true && entry['userId'] === UNKNOWN_ID);
    expect(line).toMatchObject({ action: 'management', method: `${UserManagementService.typeName}/EnableUser`, caller: '127.0.0.1', callerSource: 'peer', code: 'NotFound' });
  });
});

describe('ListUsers', () => {
  it('pages by id with an opaque token, the last page without one', async () => {
    const prefix = `page${Date.now()}`;
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await register(prefix)).id);
    const seen: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await admin().listUsers({ pageSize: 2, pageToken: token, emailPrefix: prefix });
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((user) => user.id));
      token = page.nextPageToken;
      pages++;
    } while (token !== '' && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].sort());
    // Default size 50, and the prefix matches case-insensitively.
    expect((await admin().listUsers({ emailPrefix: prefix.toUpperCase() })).users).toHaveLength(5);
  });

  it('filters by status, and takes a prefix literally (LIKE wildcards are text)', async () => {
    const prefix = `status${Date.now()}`;
    const [a, b] = [await register(prefix), await register(prefix)];
    await admin().disableUser({ userId: b.id, reason: 'test' });
    const disabled = await admin().listUsers({ status: UserStatus.DISABLED, emailPrefix: prefix });
    expect(disabled.users.map((user) => user.id)).toEqual([b.id]);
    expect(disabled.users[0]!.status).toBe(UserStatus.DISABLED);
    expect((await admin().listUsers({ status: UserStatus.ACTIVE, emailPrefix: prefix })).users.map((user) => user.id)).toEqual([a.id]);
    expect((await admin().listUsers({ emailPrefix: `${prefix.slice(0, 3)}%` })).users).toEqual([]);
    expect((await admin().listUsers({ emailPrefix: `${prefix.slice(0, 3)}_` })).users).toEqual([]);
  });

  it.each([
    ['a page size above 100', { pageSize: 101 }, 'page_size'],
    ['a negative page size', { pageSize: -1 }, 'page_size'],
    ['a token that is not one', { pageToken: "1' or '1'='1" }, 'page_token'],
    ['a token of base64 junk', { pageToken: Buffer.from('{"v":1,"a":"x"}').toString('base64url') }, 'page_token'],
    ['the DELETED status', { status: UserStatus.DELETED }, 'status'],
    ['an unknown status number', { status: 42 as UserStatus }, 'status'],
    ['a prefix with a control character', { emailPrefix: 'a\u0007' }, 'email_prefix'],
  ])('refuses %s with INVALID_ARGUMENT', async (_name, request, field) => {
    const error = await connectError(admin().listUsers(request));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain(field);
  });

  it('refuses a token used with other filters than it was made for', async () => {
    const prefix = `tok${Date.now()}`;
    await register(prefix);
    await register(prefix);
    const { nextPageToken } = await admin().listUsers({ pageSize: 1, emailPrefix: prefix });
    expect(nextPageToken).not.toBe('');
    expect((await connectError(admin().listUsers({ pageSize: 1, pageToken: nextPageToken, emailPrefix: 'other' }))).code).toBe(Code.InvalidArgument);
    expect((await admin().listUsers({ pageSize: 1, pageToken: nextPageToken, emailPrefix: prefix })).users).toHaveLength(1);
  });
});

describe('UpdateUserProfile', () => {
  it('changes only the names given, writes UserProfileUpdated, and nothing when nothing changes', async () => {
    const { id } = await register();
    const { user } = await admin().updateUserProfile({ userId: id, firstName: '  Zoë ' });
    expect(user).toMatchObject({ firstName: 'Zoë', lastName: 'Lee' });
    expect((await api().getUser({ userId: id })).user).toMatchObject({ firstName: 'Zoë', lastName: 'Lee' });
    await admin().updateUserProfile({ userId: id, firstName: 'Zoë', lastName: 'Lee' });
    expect(await outboxCount(id, 'identity.v1.UserProfileUpdated')).toBe(1);
    await expect.poll(() => eventTypes(id), { timeout: 15_000 }).toEqual(['identity.v1.UserRegistered', 'identity.v1.UserProfileUpdated']);
    const [, updated] = await events(id);
    expect(updated!.subject).toBe(`${env['NATS_SUBJECT_PREFIX']}.user.profile_updated`);
    expect(updated!.body).toMatchObject({ userId: id, firstName: 'Zoë', lastName: 'Lee' });
  });

  it('applies the registration rules to names, and answers NOT_FOUND / INVALID_ARGUMENT for ids', async () => {
    const { id } = await register();
    const bad = await connectError(admin().updateUserProfile({ userId: id, firstName: '', lastName: 'x'.repeat(51) }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toContain('first_name');
    expect(bad.message).toContain('last_name');
    expect((await connectError(admin().updateUserProfile({ userId: UNKNOWN_ID, firstName: 'A' }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().updateUserProfile({ userId: 'not-a-uuid', firstName: 'A' }))).code).toBe(Code.InvalidArgument);
  });
});

describe('SetPassword', () => {
  it('applies the policy, revokes every session, sets tokens_valid_after, and writes UserPasswordChanged{by_admin}', async () => {
    const { id, email } = await register();
    const login = await api().authenticate({ email, password: PASSWORD });
    const weak = await connectError(admin().setPassword({ userId: id, newPassword: 'password1' }));
    expect(weak.code).toBe(Code.InvalidArgument);
    expect(weak.message).toContain('new_password');
    expect((await connectError(admin().setPassword({ userId: id, newPassword: email }))).code).toBe(Code.InvalidArgument);

    await admin().setPassword({ userId: id, newPassword: 'purple monkey dishwasher' });
    const row = await db.knex('users').where({ id }).first();
    expect(row.tokens_valid_after).not.toBeNull();
    expect((await connectError(api().authenticate({ email, password: PASSWORD }))).code).toBe(Code.Unauthenticated);
    expect((await api().authenticate({ email, password: 'purple monkey dishwasher' })).user!.id).toBe(id);
    expect((await connectError(api().refreshToken({ refreshToken: login.refreshToken }))).code).toBe(Code.Unauthenticated);
    await expect.poll(() => verifyOutcome(api(), login.accessToken), { timeout: 5_000 }).toBe('Unauthenticated');

    await expect.poll(() => eventTypes(id), { timeout: 15_000 }).toEqual(['identity.v1.UserRegistered', 'identity.v1.UserPasswordChanged', 'identity.v1.SessionRevoked']);
    const [, changed, revoked] = await events(id);
    expect(changed!.body).toMatchObject({ userId: id, byAdmin: true });
    expect(revoked!.body).toMatchObject({ userId: id, sessionId: '', reason: SessionRevokedReason.PASSWORD_CHANGED });
    expect(revoked!.body['tokensValidAfter']).toBeDefined();
    expect((await connectError(admin().setPassword({ userId: UNKNOWN_ID, newPassword: 'purple monkey dishwasher' }))).code).toBe(Code.NotFound);
  });
});

describe('DisableUser and EnableUser', () => {
  it('disables with the reason kept, revokes sessions, refuses logins like a wrong password, and is idempotent', async () => {
    const { id, email } = await register();
    const login = await api().authenticate({ email, password: PASSWORD });
    const wrongPassword = await connectError(api().authenticate({ email, password: 'not the password at all' }));

    const { user } = await admin().disableUser({ userId: id, reason: ' left the company ' });
    expect(user!.status).toBe(UserStatus.DISABLED);
    expect(await db.knex('users').where({ id }).first()).toMatchObject({ status: 'disabled', disabled_reason: 'left the company' });
    const disabledLogin = await connectError(api().authenticate({ email, password: PASSWORD }));
    expect([disabledLogin.code, disabledLogin.rawMessage, disabledLogin.details]).toEqual([wrongPassword.code, wrongPassword.rawMessage, wrongPassword.details]);
    expect((await connectError(api().refreshToken({ refreshToken: login.refreshToken }))).code).toBe(Code.Unauthenticated);
    await expect.poll(() => verifyOutcome(api(), login.accessToken), { timeout: 5_000 }).toBe('Unauthenticated');

    // Again: the same answer, no write, no second event; the first reason stays.
    const again = await admin().disableUser({ userId: id, reason: 'another reason' });
    expect(again.user!.status).toBe(UserStatus.DISABLED);
    expect(await outboxCount(id, 'identity.v1.UserDisabled')).toBe(1);
    expect((await db.knex('users').where({ id }).first()).disabled_reason).toBe('left the company');

    const enabled = await admin().enableUser({ userId: id });
    expect(enabled.user!.status).toBe(UserStatus.ACTIVE);
    await admin().enableUser({ userId: id });
    expect(await outboxCount(id, 'identity.v1.UserEnabled')).toBe(1);
    expect((await db.knex('users').where({ id }).first()).disabled_reason).toBeNull();
    expect((await api().authenticate({ email, password: PASSWORD })).user!.id).toBe(id);
    // The access token from before the disable stays refused after the enable (tokens_valid_after).
    expect(await verifyOutcome(api(), login.accessToken)).toBe('Unauthenticated');

    await expect.poll(() => eventTypes(id), { timeout: 15_000 }).toEqual([
      'identity.v1.UserRegistered',
      'identity.v1.UserDisabled',
      'identity.v1.SessionRevoked',
      'identity.v1.UserEnabled',
    ]);
    const [, disabled, revoked, enabledEvent] = await events(id);
    expect(disabled!.subject).toBe(`${env['NATS_SUBJECT_PREFIX']}.user.disabled`);
    expect(disabled!.body).toMatchObject({ userId: id, reason: 'left the company' });
    expect(revoked!.body).toMatchObject({ reason: SessionRevokedReason.USER_DISABLED, sessionId: '' });
    expect(enabledEvent!.subject).toBe(`${env['NATS_SUBJECT_PREFIX']}.user.enabled`);
  });

  it('answers NOT_FOUND for unknown users and INVALID_ARGUMENT for malformed ids and reasons', async () => {
    expect((await connectError(admin().disableUser({ userId: UNKNOWN_ID, reason: 'x' }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().enableUser({ userId: UNKNOWN_ID }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().disableUser({ userId: 'nope', reason: 'x' }))).code).toBe(Code.InvalidArgument);
    expect((await connectError(admin().enableUser({ userId: '' }))).code).toBe(Code.InvalidArgument);
    const { id } = await register();
    expect((await connectError(admin().disableUser({ userId: id, reason: 'r'.repeat(501) }))).code).toBe(Code.InvalidArgument);
  });
});

describe('DeleteUser', () => {
  it('erases the row (the id stays as a tombstone), revokes sessions, frees the email, and writes UserDeleted without personal data', async () => {
    const { id, email } = await register();
    const login = await api().authenticate({ email, password: PASSWORD });
    await admin().updateUserProfile({ userId: id, firstName: 'Erasable', lastName: 'Person' });
    expect(await admin().deleteUser({ userId: id })).toBeDefined();

    const row = await db.knex('users').where({ id }).first();
    expect(row).toMatchObject({ id, status: 'deleted', email: null, email_key: null, first_name: null, last_name: null, password_hash: null });
    expect(await db.knex('sessions').where({ user_id: id }).whereNull('revoked_at')).toEqual([]);
    expect((await db.knex('sessions').where({ user_id: id })).map((session: { client_address: string }) => session.client_address)).toEqual(['']);
    expect((await connectError(api().getUser({ userId: id }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().deleteUser({ userId: id }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().enableUser({ userId: id }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().listSessions({ userId: id }))).code).toBe(Code.NotFound);
    expect((await connectError(api().authenticate({ email, password: PASSWORD }))).code).toBe(Code.Unauthenticated);
    expect((await connectError(api().refreshToken({ refreshToken: login.refreshToken }))).code).toBe(Code.Unauthenticated);
    await expect.poll(() => verifyOutcome(api(), login.accessToken), { timeout: 5_000 }).toBe('Unauthenticated');
    expect((await admin().listUsers({ emailPrefix: email })).users).toEqual([]);

    // The email registers again, as a new user with a new id.
    const again = await api().registerUser({ email, password: PASSWORD, firstName: 'Ann', lastName: 'Lee' });
    expect(again.user!.id).not.toBe(id);

    await expect.poll(() => eventTypes(id), { timeout: 15_000 }).toEqual([
      'identity.v1.UserRegistered',
      'identity.v1.UserProfileUpdated',
      'identity.v1.SessionRevoked',
      'identity.v1.UserDeleted',
    ]);
    const deleted = (await events(id)).at(-1)!;
    expect(deleted.subject).toBe(`${env['NATS_SUBJECT_PREFIX']}.user.deleted`);
    expect(deleted.body).toMatchObject({ userId: id });
    const payload = Buffer.from(deleted.message.data);
    for (const personal of [email, 'Erasable', 'Person', 'Ann', 'Lee']) expect(payload.includes(Buffer.from(personal))).toBe(false);
    expect(Object.keys(deleted.body).filter((key) => !key.startsWith('$')).sort()).toEqual(['eventId', 'occurredAt', 'userId']);
  });

  it('answers NOT_FOUND for an unknown user and INVALID_ARGUMENT for a malformed id', async () => {
    expect((await connectError(admin().deleteUser({ userId: UNKNOWN_ID }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().deleteUser({ userId: 'x' }))).code).toBe(Code.InvalidArgument);
  });
});

describe('ListSessions and RevokeUserSessions', () => {
  it('lists live sessions, revokes them all (ADMIN), and with none left revokes nothing and writes nothing', async () => {
    const { id, email } = await register();
    const first = await api().authenticate({ email, password: PASSWORD });
    const second = await api().authenticate({ email, password: PASSWORD });
    await api().logout({ refreshToken: second.refreshToken });
    const third = await api().authenticate({ email, password: PASSWORD });
    const { sessions } = await admin().listSessions({ userId: id });
    expect(sessions.map((session) => session.id)).toEqual([first.sessionId, third.sessionId]);
    expect(sessions[0]).toMatchObject({ userId: id, clientAddress: '127.0.0.1' });
    expect(sessions[0]!.expiresAt).toBeDefined();

    expect((await admin().revokeUserSessions({ userId: id })).revokedSessions).toBe(2);
    expect((await admin().listSessions({ userId: id })).sessions).toEqual([]);
    expect((await admin().revokeUserSessions({ userId: id })).revokedSessions).toBe(0);
    expect((await connectError(api().refreshToken({ refreshToken: third.refreshToken }))).code).toBe(Code.Unauthenticated);
    await expect.poll(() => verifyOutcome(api(), first.accessToken), { timeout: 5_000 }).toBe('Unauthenticated');

    await expect.poll(() => eventTypes(id), { timeout: 15_000 }).toEqual(['identity.v1.UserRegistered', 'identity.v1.SessionRevoked', 'identity.v1.SessionRevoked']);
    const admin_ = (await events(id)).at(-1)!;
    expect(admin_.body).toMatchObject({ userId: id, sessionId: '', reason: SessionRevokedReason.ADMIN });
    expect(admin_.body['tokensValidAfter']).toBeDefined();
    expect(await outboxCount(id, 'identity.v1.SessionRevoked')).toBe(2);
  });

  it('answers NOT_FOUND and INVALID_ARGUMENT', async () => {
    expect((await connectError(admin().listSessions({ userId: UNKNOWN_ID }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().revokeUserSessions({ userId: UNKNOWN_ID }))).code).toBe(Code.NotFound);
    expect((await connectError(admin().listSessions({ userId: '1234' }))).code).toBe(Code.InvalidArgument);
    expect((await connectError(admin().revokeUserSessions({ userId: '1234' }))).code).toBe(Code.InvalidArgument);
  });
});
