import type { JetStreamClient } from '@nats-io/jetstream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { OutboxRelay, type OutboxRelayOptions } from '../../src/infrastructure/outbox/outbox-relay.js';
import { OutboxStore } from '../../src/infrastructure/outbox/outbox.store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertOutboxRows } from '../helpers/nats.js';

// Issue 17: a live relay keeps the rows it is publishing past their (short) lease, so another
// replica never takes over a slow batch; only a dead relay's rows come free after one lease.

vi.setConfig({ testTimeout: 60_000 });

const LEASE_SECONDS = 5;
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

function relay(relayId: string, js: Pick<JetStreamClient, 'publish'>): OutboxRelay {
  const options: OutboxRelayOptions = {
    relayId,
    streamName: 'UNUSED',
    subjectPrefix: 'test',
    batchSize: 10,
    maxInFlight: 10,
    pollMs: 50,
    maxAttempts: 5,
    backoffBaseMs: 1_000,
    backoffMaxMs: 1_000,
    leaseSeconds: LEASE_SECONDS,
    duplicateWindowSeconds: 1_200,
    retentionHours: 72,
  };
  const client = js as JetStreamClient;
  return new OutboxRelay(
    { store: new OutboxStore(db.knex), nats: { jetstream: client, whenReady: () => Promise.resolve(client) }, metrics: createMetrics(), logger: pino({ level: 'silent' }) },
    options,
  );
}

describe('outbox lease heartbeat', () => {
  it('renews the claims of a batch still publishing after its lease, and lets them go once settled', async () => {
    const ids = await insertOutboxRows(db.knex, 3);
    let release: () => void = () => undefined;
    const acks = new Promise<void>((resolve) => (release = resolve));
    let publishes = 0;
    // Publishes hang until released: a batch that takes longer than two leases.
    const slow = relay('slow', {
      publish: async () => {
        publishes++;
        await acks;
        return { stream: 'UNUSED', seq: publishes, duplicate: false, domain: '' };
      },
    });
    slow.start();
    try {
      await vi.waitFor(() => expect(publishes).toBe(3), { timeout: 10_000 });
      const claimedAt = Date.now();
      const leases = () => db.knex('outbox').whereIn('event_id', ids).select('locked_by', 'locked_until');
      // Past two leases the rows are still this relay's, leased into the future by the database's clock.
      await vi.waitFor(() => expect(Date.now() - claimedAt).toBeGreaterThan(2 * LEASE_SECONDS * 1_000), { timeout: 15_000, interval: 200 });
      const [{ now }] = (await db.knex.raw<{ rows: { now: Date }[] }>('select now()')).rows as [{ now: Date }];
      for (const row of await leases()) {
        expect(row.locked_by).toBe('slow');
        expect(new Date(row.locked_until as string).getTime()).toBeGreaterThan(new Date(now).getTime());
      }
      // Another replica finds nothing to take.
      expect(await new OutboxStore(db.knex).claim({ relayId: 'other', limit: 10, leaseSeconds: LEASE_SECONDS })).toEqual([]);
      release();
      await vi.waitFor(async () => expect(await db.knex('outbox').whereIn('event_id', ids).whereNull('published_at').count({ n: '*' }).first()).toEqual({ n: '0' }), {
        timeout: 10_000,
      });
    } finally {
      release();
      await slow.stop(5_000);
    }
  });
});
