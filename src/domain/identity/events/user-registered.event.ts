import type { SessionRevokedEvent } from './session-revoked.event.js';
import type { UserDeletedEvent, UserDisabledEvent, UserEnabledEvent, UserProfileUpdatedEvent } from './user-management.events.js';
import type { UserPasswordChangedEvent } from './user-password-changed.event.js';

/**
 * Raised when a user is registered. It carries no secret: no password and no hash.
 * The outbox stores it in the same transaction as the user row.
 */
export interface UserRegisteredEvent {
  readonly type: 'identity.v1.UserRegistered';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly email: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly occurredAt: Date;
}

/** Every event the identity domain raises. */
export type DomainEvent =
  | UserRegisteredEvent
  | UserPasswordChangedEvent
  | SessionRevokedEvent
  | UserProfileUpdatedEvent
  | UserDisabledEvent
  | UserEnabledEvent
  | UserDeletedEvent;
