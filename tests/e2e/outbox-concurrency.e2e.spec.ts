import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { deleteStream, insertOutboxRows, readStream, waitUntil } from '../helpers/nats.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

// Issue 4: several replicas relay from one database; SKIP LOCKED and the lease keep them
// apart, so each event is published once, and each aggregate's events in commit order.

// Processes, backlogs and NATS restarts are slow on a machine shared with other suites.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const NATS_URL = inject('natsUrl');
const SINGLES = 4_000;
const AGGREGATES = 100;
const EVENTS_PER_AGGREGATE = 10;

let db: TestDatabase;
let env: Record<string, string>;
const relays: TestService[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '50', OUTBOX_BATCH_SIZE: '100' });
});

afterAll(async () => {
  for (const relay of relays) await relay.shutdown();
  await db?.[Symbol.asyncDispose]();
  if (env !== undefined) await deleteStream(NATS_URL, env['NATS_STREAM']!);
});

/** outbox_published_total of one relay: every publish it got an ack for, duplicates included. */
async function publishedBy(relay: TestService): Promise<number> {
  const metric = await relay.metrics.registry.getSingleMetric('outbox_published_total')?.get();
  return metric?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
}

describe('two relays on one database', () => {
  it('publish a 5,000-row backlog with each event exactly once, and each aggregate in commit order', async () => {
    await insertOutboxRows(db.knex, SINGLES);
    // Aggregates with several events, interleaved with each other in id order.
    const aggregates = Array.from({ length: AGGREGATES }, () => randomUUID());
    for (let round = 0; round < EVENTS_PER_AGGREGATE; round++) {
      for (const aggregateId of aggregates) await insertOutboxRows(db.knex, 1, { aggregateId });
    }
    const total = SINGLES + AGGREGATES * EVENTS_PER_AGGREGATE;
    const rows = await db.knex('outbox').orderBy('id').select('event_id', 'aggregate_id');
    expect(rows).toHaveLength(total);

    relays.push(...(await Promise.all([startTestService(env), startTestService(env)])));
    await waitUntil(
      async () => (await db.knex('outbox').whereNull('published_at').count({ n: '*' }).first())?.n === '0',
      120_000,
      'backlog not drained',
    );

    const messages = await readStream(NATS_URL, env['NATS_STREAM']!);
    const msgIds = messages.map((message) => message.headers['Nats-Msg-Id']!);
    expect(messages).toHaveLength(total);
    expect(new Set(msgIds).size).toBe(total);
    expect(new Set(msgIds)).toEqual(new Set(rows.map((row) => row.event_id)));

    // No row was published twice: the acks the two relays got add up to the row count, and
    // both took part.
    const counts = await Promise.all(relays.map(publishedBy));
    expect(counts.every((count) => count > 0)).toBe(true);
    expect(counts[0]! + counts[1]!).toBe(total);

    // Per aggregate, the stream order is the outbox (commit) order.
    const streamOrder = new Map(msgIds.map((id, index) => [id, index]));
    for (const aggregateId of aggregates) {
      const positions = rows.filter((row) => row.aggregate_id === aggregateId).map((row) => streamOrder.get(row.event_id)!);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
    expect(await db.knex('outbox').max({ attempts: 'attempts' }).first()).toEqual({ attempts: 0 });
  });
});
