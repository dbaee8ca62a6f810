import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, inject, it } from 'vitest';
import { consumeEvents, SessionRevokedReason, type DecodedEvent } from '@identity-service/events';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase } from '../helpers/database.js';
import { deleteStream } from '../helpers/nats.js';
import { startTestService, testEnv } from '../helpers/service.js';

// Issue 18: the subscriber package decodes what the real relay publishes (the package's own
// tests publish the types the service cannot produce yet, as the relay does).

const NATS_URL = inject('natsUrl');
const PASSWORD = 'correct horse battery';

describe('@identity-service/events with the real service', () => {
  it('decodes the registration, logout and password change the relay published', async () => {
    await using db = await createTestDatabase();
    const env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100' });
    const nc = await connect({ servers: [NATS_URL] });
    try {
      await using service = await startTestService(env);
      const client = connectClient(service.url);
      const email = `package.${Date.now()}@example.com`;
      const { user } = await client.registerUser({ email, password: PASSWORD, firstName: 'Pat', lastName: 'Kage' });
      const { refreshToken } = await client.authenticate({ email, password: PASSWORD });
      await client.logout({ refreshToken });
      await client.changePassword({ email, currentPassword: PASSWORD, newPassword: 'purple monkey dishwasher' });

      const received: DecodedEvent[] = [];
      await using _consumer = await consumeEvents({
        jetstream: jetstream(nc),
        stream: env['NATS_STREAM']!,
        durable: 'package-e2e',
        deliver: 'all',
        handle: (event) => void received.push(event),
      });
      await expect
        .poll(() => received.map((event) => (event.known ? event.type : `unknown ${event.reason}`)), { timeout: 30_000 })
        .toEqual(['identity.v1.UserRegistered', 'identity.v1.SessionRevoked', 'identity.v1.UserPasswordChanged', 'identity.v1.SessionRevoked']);

      for (const event of received) {
        if (!event.known) throw new Error('not decoded');
        expect(event.event.userId).toBe(user!.id);
        expect(event.id).toBe(event.event.eventId);
        expect(event.headers['ce-id']).toBe(event.id);
      }
      const reasons = received.map((event) => (event.known && event.type === 'identity.v1.SessionRevoked' ? event.event.reason : undefined));
      expect(reasons.filter((reason) => reason !== undefined)).toEqual([SessionRevokedReason.LOGOUT, SessionRevokedReason.PASSWORD_CHANGED]);
      expect(received[0]?.known && received[0].type === 'identity.v1.UserRegistered' && received[0].event.email).toBe(email);
    } finally {
      await nc.close();
      await deleteStream(NATS_URL, env['NATS_STREAM']!);
    }
  });
});
