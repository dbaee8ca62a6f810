import type { Outbox } from '../../src/application/ports/outbox.port.js';
import type { DomainEvent } from '../../src/domain/identity/events/user-registered.event.js';

/** Events in the order they were added; inside a FakeUnitOfWork they appear only once it commits. */
export class FakeOutbox implements Outbox {
  readonly events: DomainEvent[] = [];

  add(event: DomainEvent): Promise<void> {
    this.events.push(event);
    return Promise.resolve();
  }
}
