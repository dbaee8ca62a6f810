import type { DomainEvent } from '../../domain/identity/events/user-registered.event.js';

/** Records events for later publication, inside the caller's transaction. */
export interface Outbox {
  add(event: DomainEvent): Promise<void>;
}
