import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { UserRegisteredEvent } from '../../src/domain/identity/events/user-registered.event.js';
import { encodeEvent, type EncodedEvent } from '../../src/infrastructure/outbox/event-codec.js';

/** A UserRegistered event like the ones RegisterUser raises (fresh ids, realistic field sizes). */
export function fakeUserRegistered(n: number): UserRegisteredEvent {
  const userId = randomUUID();
  return {
    type: 'identity.v1.UserRegistered',
    eventId: randomUUID(),
    aggregateId: userId,
    userId,
    email: `bench-user-${n}@bench.example`,
    firstName: 'Bench',
    lastName: `User ${n}`,
    occurredAt: new Date(),
  };
}

/** Events encoded by the service's own codec: the payloads and headers the relay publishes. */
export const makeEvents = (count: number, source: string): EncodedEvent[] =>
  Array.from({ length: count }, (_, n) => encodeEvent(fakeUserRegistered(n), source, new Date()));

const INSERT_BATCH = 1_000;

/**
 * Puts a backlog into the outbox with the columns OutboxWriter writes (created_at and the
 * relay's columns take their defaults), in multi-row inserts: one row per transaction would
 * take minutes for 100,000 rows and measure nothing the relay does.
 */
export async function insertBacklog(knex: Knex, events: readonly EncodedEvent[]): Promise<void> {
  for (let from = 0; from < events.length; from += INSERT_BATCH) {
    const rows = events.slice(from, from + INSERT_BATCH).map((event) => ({
      event_id: event.eventId,
      event_type: event.eventType,
      aggregate_id: event.aggregateId,
      payload: Buffer.from(event.payload),
      headers: event.headers,
    }));
    await knex('outbox').insert(rows);
  }
}
