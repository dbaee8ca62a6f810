import { randomUUID } from 'node:crypto';
import type { Email } from './value-objects/email.value-object.js';
import type { PasswordHash } from './value-objects/password-hash.value-object.js';
import type { PersonName } from './value-objects/person-name.value-object.js';
import { UserId } from './value-objects/user-id.value-object.js';
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
}
