import type { Knex } from 'knex';
import type { DomainEvent } from '../../domain/identity/events/user-registered.event.js';
import type { Outbox } from '../../application/ports/outbox.port.js';
import { withDbErrors } from '../db/db-errors.js';
import { encodeEvent } from './event-codec.js';

/** Writes events into the outbox table inside the caller's transaction. */
export class OutboxWriter implements Outbox {
  private written = 0;

  constructor(
    private readonly trx: Knex.Transaction,
    private readonly source: string,
  ) {}

  /** How many events this transaction wrote, so the relay can be woken after commit. */
  get count(): number {
    return this.written;
  }

  add(event: DomainEvent): Promise<void> {
    return withDbErrors(async () => {
      const encoded = encodeEvent(event, this.source, new Date());
      await this.trx('outbox').insert({
        event_id: encoded.eventId,
        event_type: encoded.eventType,
        aggregate_id: encoded.aggregateId,
        payload: Buffer.from(encoded.payload),
        headers: encoded.headers,
      });
      this.written++;
    });
  }
}
