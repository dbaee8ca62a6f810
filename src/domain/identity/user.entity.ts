import { randomUUID } from 'node:crypto';
import { PersonName } from './value-objects/person-name.value-object.js';
import { Email } from './value-objects/email.value-object.js';
import { PasswordHash } from './value-objects/password-hash.value-object.js';
import { UserId } from './value-objects/user-id.value-object.js';
import type { UserDeletedEvent, UserDisabledEvent, UserEnabledEvent, UserProfileUpdatedEvent } from './events/user-management.events.js';
import type { UserPasswordChangedEvent } from './events/user-password-changed.event.js';
import type { UserRegisteredEvent } from './events/user-registered.event.js';
import { UserStatus } from './user-status.js';

export interface UserProps {
  readonly id: UserId;
  readonly email: Email;
  readonly firstName: PersonName;
  readonly lastName: PersonName;
  readonly passwordHash: PasswordHash;
  readonly status: UserStatus;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Tokens of the user issued before this instant are refused (set by a password change). */
  readonly tokensValidAfter?: Date | undefined;
  /** Why an operator disabled the user (DisableUser's reason); cleared when enabled. */
  readonly disabledReason?: string | undefined;
}

export interface NewUser {
  readonly email: Email;
  readonly firstName: PersonName;
  readonly lastName: PersonName;
  readonly passwordHash: PasswordHash;
}

/** The user aggregate. Immutable: a change returns a new User. */
export class User {
  private constructor(private readonly props: UserProps) {}

  /** Creates an active user and the event that announces it. */
  static register(input: NewUser, now: Date): { user: User; event: UserRegisteredEvent } {
    const user = new User({ ...input, id: UserId.generate(), status: UserStatus.Active, createdAt: now, updatedAt: now });
    const event: UserRegisteredEvent = {
      type: 'identity.v1.UserRegistered',
      eventId: randomUUID(),
      aggregateId: user.id.value,
      userId: user.id.value,
      email: user.email.value,
      firstName: user.firstName.value,
      lastName: user.lastName.value,
      occurredAt: now,
    };
    return { user, event };
  }

  /** Rebuilds a user from storage. */
  static restore(props: UserProps): User {
    return new User(props);
  }

  get id(): UserId {
    return this.props.id;
  }
  get email(): Email {
    return this.props.email;
  }
  get firstName(): PersonName {
    return this.props.firstName;
  }
  get lastName(): PersonName {
    return this.props.lastName;
  }
  get passwordHash(): PasswordHash {
    return this.props.passwordHash;
  }
  get status(): UserStatus {
    return this.props.status;
  }
  get createdAt(): Date {
    return this.props.createdAt;
  }
  get updatedAt(): Date {
    return this.props.updatedAt;
  }

  get tokensValidAfter(): Date | undefined {
    return this.props.tokensValidAfter;
  }

  get disabledReason(): string | undefined {
    return this.props.disabledReason;
  }

  get isActive(): boolean {
    return this.props.status === UserStatus.Active;
  }

  withPasswordHash(passwordHash: PasswordHash, now: Date): User {
    return new User({ ...this.props, passwordHash, updatedAt: now });
  }

  /**
   * A new password: every token issued before `now` is refused from now on (the caller
   * revokes the sessions in the same transaction).
   */
  changePassword(passwordHash: PasswordHash, now: Date, byAdmin: boolean): { user: User; event: UserPasswordChangedEvent } {
    const user = new User({ ...this.props, passwordHash, updatedAt: now, tokensValidAfter: now });
    const event: UserPasswordChangedEvent = {
      type: 'identity.v1.UserPasswordChanged',
      eventId: randomUUID(),
      aggregateId: this.props.id.value,
      userId: this.props.id.value,
      byAdmin,
      occurredAt: now,
    };
    return { user, event };
  }

  /**
   * New names (an undefined one stays as it is); undefined when nothing changes, so a
   * repeated request writes no second event.
   */
  updateProfile(names: { readonly firstName?: PersonName | undefined; readonly lastName?: PersonName | undefined }, now: Date): { user: User; event: UserProfileUpdatedEvent } | undefined {
    const firstName = names.firstName ?? this.props.firstName;
    const lastName = names.lastName ?? this.props.lastName;
    if (firstName.value === this.props.firstName.value && lastName.value === this.props.lastName.value) return undefined;
    const user = new User({ ...this.props, firstName, lastName, updatedAt: now });
    const event: UserProfileUpdatedEvent = {
      type: 'identity.v1.UserProfileUpdated',
      eventId: randomUUID(),
      aggregateId: this.props.id.value,
      userId: this.props.id.value,
      firstName: firstName.value,
      lastName: lastName.value,
      occurredAt: now,
    };
    return { user, event };
  }

  /** Every token of the user issued before `now` is refused from now on (all sessions revoked). */
  cutOffTokens(now: Date): User {
    return new User({ ...this.props, updatedAt: now, tokensValidAfter: now });
  }

  /**
   * Disables an active user: every token issued before `now` stays refused even once it is
   * enabled again. Undefined when it is not active (already disabled: nothing changes).
   */
  disable(reason: string, now: Date): { user: User; event: UserDisabledEvent } | undefined {
    if (this.props.status !== UserStatus.Active) return undefined;
    const user = new User({ ...this.props, status: UserStatus.Disabled, disabledReason: reason, updatedAt: now, tokensValidAfter: now });
    const event: UserDisabledEvent = { type: 'identity.v1.UserDisabled', eventId: randomUUID(), aggregateId: this.props.id.value, userId: this.props.id.value, reason, occurredAt: now };
    return { user, event };
  }

  /** Enables a disabled user; undefined when it is not disabled (already active: nothing changes). */
  enable(now: Date): { user: User; event: UserEnabledEvent } | undefined {
    if (this.props.status !== UserStatus.Disabled) return undefined;
    const user = new User({ ...this.props, status: UserStatus.Active, disabledReason: undefined, updatedAt: now });
    const event: UserEnabledEvent = { type: 'identity.v1.UserEnabled', eventId: randomUUID(), aggregateId: this.props.id.value, userId: this.props.id.value, occurredAt: now };
    return { user, event };
  }

  /**
   * Erasure: the email, names and password hash are gone (stored as NULL), the id stays as a
   * tombstone, and every token of the user is refused from now on.
   */
  erase(now: Date): { user: User; event: UserDeletedEvent } {
    const user = new User({
      ...this.props,
      email: Email.fromTrusted(''),
      firstName: PersonName.fromTrusted(''),
      lastName: PersonName.fromTrusted(''),
      passwordHash: PasswordHash.fromTrusted(''),
      status: UserStatus.Deleted,
      disabledReason: undefined,
      updatedAt: now,
      tokensValidAfter: now,
    });
    const event: UserDeletedEvent = { type: 'identity.v1.UserDeleted', eventId: randomUUID(), aggregateId: this.props.id.value, userId: this.props.id.value, occurredAt: now };
    return { user, event };
  }
}
