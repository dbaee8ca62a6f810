import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SessionRevokedReason, SessionRevokedSchema, UserPasswordChangedSchema } from '../../src/gen/identity/v1/events_pb.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { deleteStream, waitForMessages } from '../helpers/nats.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';
import { connectError } from '../helpers/sessions.js';

/** Issue 13: SessionRevoked (every reason this build writes) and UserPasswordChanged, as a subscriber reads them from the stream. */

const NATS_URL = inject('natsUrl');
let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100' });
  service = await startTestService(env);
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await deleteStream(NATS_URL, env['NATS_STREAM']!).catch(() => undefined);
  await db?.[Symbol.asyncDispose]();
});

const PASSWORD = 'correct horse battery';

describe('session events on the stream', () => {
  it('publishes SessionRevoked (logout, reuse, password change) and UserPasswordChanged with their subjects and ce-type, carrying no token', async () => {
    const client = connectClient(service.url);
    const email = `events.${Date.now()}@example.com`;
    const { user } = await client.registerUser({ email, password: PASSWORD, firstName: 'Eve', lastName: 'Nts' });
    const tokens: string[] = [];
    const loggedOut = await client.authenticate({ email, password: PASSWORD });
    await client.logout({ refreshToken: loggedOut.refreshToken });
    const reused = await client.authenticate({ email, password: PASSWORD });
    const rotated = await client.refreshToken({ refreshToken: reused.refreshToken });
    await connectError(client.refreshToken({ refreshToken: reused.refreshToken }));
    const live = await client.authenticate({ email, password: PASSWORD });
    await client.changePassword({ email, currentPassword: PASSWORD, newPassword: 'purple monkey dishwasher' });
    tokens.push(loggedOut.refreshToken, reused.refreshToken, rotated.refreshToken, live.refreshToken);

    const prefix = env['NATS_SUBJECT_PREFIX']!;
    const messages = await waitForMessages(NATS_URL, env['NATS_STREAM']!, 5);
    expect(messages.map((m) => [m.subject, m.headers['ce-type']])).toEqual([
      [`${prefix}.user.registered`, 'identity.v1.UserRegistered'],
      [`${prefix}.session.revoked`, 'identity.v1.SessionRevoked'],
      [`${prefix}.session.revoked`, 'identity.v1.SessionRevoked'],
      [`${prefix}.user.password_changed`, 'identity.v1.UserPasswordChanged'],
      [`${prefix}.session.revoked`, 'identity.v1.SessionRevoked'],
    ]);
    const [, logout, reuse, passwordChanged, allRevoked] = messages;
    expect(fromBinary(SessionRevokedSchema, logout!.data)).toMatchObject({ userId: user!.id, sessionId: loggedOut.sessionId, reason: SessionRevokedReason.LOGOUT });
    expect(fromBinary(SessionRevokedSchema, reuse!.data)).toMatchObject({ userId: user!.id, sessionId: reused.sessionId, reason: SessionRevokedReason.REFRESH_TOKEN_REUSED });
    expect(fromBinary(UserPasswordChangedSchema, passwordChanged!.data)).toMatchObject({ userId: user!.id, byAdmin: false });
    const all = fromBinary(SessionRevokedSchema, allRevoked!.data);
    expect(all).toMatchObject({ userId: user!.id, sessionId: '', reason: SessionRevokedReason.PASSWORD_CHANGED });
    expect(all.tokensValidAfter).toBeDefined();
    for (const message of messages) {
      expect(message.headers['Nats-Msg-Id']).toBe(message.headers['ce-id']);
      expect(message.headers['content-type']).toBe('application/protobuf');
      for (const token of tokens) {
        expect(Buffer.from(message.data).includes(Buffer.from(token))).toBe(false);
        expect(JSON.stringify(message.headers)).not.toContain(token);
      }
    }
  });
});
