/** Raised when an operator changes a user's names; it carries the names as they now are. */
export interface UserProfileUpdatedEvent {
  readonly type: 'identity.v1.UserProfileUpdated';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly occurredAt: Date;
}

/** Raised when an operator disables a user, with the reason the operator gave. */
export interface UserDisabledEvent {
  readonly type: 'identity.v1.UserDisabled';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly reason: string;
  readonly occurredAt: Date;
}

/** Raised when a disabled user is enabled again. */
export interface UserEnabledEvent {
  readonly type: 'identity.v1.UserEnabled';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly occurredAt: Date;
}

/** Raised when a user is erased. It carries no personal data: the id and the time only. */
export interface UserDeletedEvent {
  readonly type: 'identity.v1.UserDeleted';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly occurredAt: Date;
}
