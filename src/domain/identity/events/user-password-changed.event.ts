/** Raised when a user's password changes; it carries neither password nor hash. */
export interface UserPasswordChangedEvent {
  readonly type: 'identity.v1.UserPasswordChanged';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly byAdmin: boolean;
  readonly occurredAt: Date;
}
