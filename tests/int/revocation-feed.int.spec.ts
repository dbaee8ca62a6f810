import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/application/ports/clock.port.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { InMemoryRevocationList } from '../../src/infrastructure/revocation/in-memory-revocation-list.js';
import { RevocationFeed } from '../../src/infrastructure/revocation/revocation-feed.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/** Issue 13: how the revocation list learns of revocations committed by anyone. */

let db: TestDatabase;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

async function userWithSession() {
  const userId = randomUUID();
  const sessionId = randomUUID();
  const now = new Date();
  await db.knex('users').insert({
    id: userId,
    email: `${userId}@example.com`,
    email_key: `${userId}@example.com`,
    password_hash: 'x',
    first_name: 'A',
    last_name: 'B',
    status: 'active',
    created_at: now,
    updated_at: now,
  });
  await db.knex('sessions').insert({
    id: sessionId,
    user_id: userId,
    refresh_token_hash: Buffer.alloc(32, 1),
    created_at: now,
    last_refreshed_at: now,
    idle_expires_at: new Date(now.getTime() + 60_000),
    expires_at: new Date(now.getTime() + 60_000),
    client_address: '127.0.0.1',
  });
  const token = { userId, sessionId, tokenId: 'jti', issuedAt: new Date(now.getTime() - 1000), expiresAt: new Date(now.getTime() + 60_000) };
  return { userId, sessionId, token };
}

const refused = (list: InMemoryRevocationList, token: Parameters<InMemoryRevocationList['check']>[0]) => {
  try {
    list.check(token);
    return false;
  } catch {
    return true;
  }
};

function feedFor(connectionString: string | undefined, resyncSeconds: number) {
  const metrics = createMetrics();
  const list = new InMemoryRevocationList({ clock: systemClock, horizonSeconds: 930, metrics, logger });
  const feed = new RevocationFeed({ knex: db.knex, list, connectionString, resyncSeconds, metrics, logger });
  return { list, feed, metrics };
}

describe('RevocationFeed', () => {
  it('loads at start the revocations committed before it', async () => {
    const { sessionId, token } = await userWithSession();
    const disabled = await userWithSession();
    await db.knex('sessions').where({ id: sessionId }).update({ revoked_at: new Date(), revoked_reason: 'admin' });
    await db.knex('users').where({ id: disabled.userId }).update({ status: 'disabled', updated_at: new Date() });
    const { list, feed } = feedFor(undefined, 3_600);
    await feed.start();
    try {
      expect(refused(list, token)).toBe(true);
      expect(refused(list, disabled.token)).toBe(true);
      expect(list.size).toEqual({ sessions: 1, users: 1 });
    } finally {
      await feed.stop();
    }
  });

  it('applies a NOTIFY at commit, and records the propagation time', async () => {
    const { sessionId, token } = await userWithSession();
    const { list, feed, metrics } = feedFor(db.url, 3_600);
    await feed.start();
    try {
      // Listening once the start-up resync ran after the connect.
      await expect.poll(async () => (await metrics.revocationResyncs.get()).values[0]?.value ?? 0).toBeGreaterThanOrEqual(2);
      expect(refused(list, token)).toBe(false);
      await db.knex('sessions').where({ id: sessionId }).update({ revoked_at: new Date(), revoked_reason: 'logout' });
      await expect.poll(() => refused(list, token), { timeout: 1_000, interval: 10 }).toBe(true);
      const histogram = await metrics.revocationPropagationSeconds.get();
      expect(histogram.values.find((v) => v.metricName === 'revocation_propagation_seconds_count')?.value).toBe(1);
    } finally {
      await feed.stop();
    }
  });

  it('without notifications, the periodic resync catches up within REVOCATION_RESYNC_SECONDS', async () => {
    const { sessionId, token } = await userWithSession();
    const changed = await userWithSession();
    const { list, feed } = feedFor(undefined, 1);
    await feed.start();
    try {
      await db.knex('sessions').where({ id: sessionId }).update({ revoked_at: new Date(), revoked_reason: 'logout' });
      await db.knex('users').where({ id: changed.userId }).update({ tokens_valid_after: new Date(Date.now() + 1000) });
      await expect.poll(() => refused(list, token), { timeout: 2_000, interval: 50 }).toBe(true);
      await expect.poll(() => refused(list, changed.token), { timeout: 2_000, interval: 50 }).toBe(true);
    } finally {
      await feed.stop();
    }
  });
});
