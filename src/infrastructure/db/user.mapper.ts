import { User } from '../../domain/identity/user.entity.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import { Email } from '../../domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../domain/identity/value-objects/password-hash.value-object.js';
import { PersonName } from '../../domain/identity/value-objects/person-name.value-object.js';
import { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

/** A row of the users table as pg and PGlite return it. */
export interface UserRow {
  id: string;
  /** NULL (with the names and hash) only in an erased user's tombstone. */
  email: string | null;
  email_key: string | null;
  password_hash: string | null;
  first_name: string | null;
  last_name: string | null;
  status: string;
  created_at: Date;
  updated_at: Date;
  tokens_valid_after: Date | null;
  disabled_reason: string | null;
}

const statuses = new Set<string>(Object.values(UserStatus));

export const userMapper = {
  toPersistence(user: User): UserRow {
    // An erased user keeps its id only: nothing personal is written back.
    const erased = user.status === UserStatus.Deleted;
    return {
      id: user.id.value,
      email: erased ? null : user.email.value,
      email_key: erased ? null : user.email.key,
      password_hash: erased ? null : user.passwordHash.reveal(),
      first_name: erased ? null : user.firstName.value,
      last_name: erased ? null : user.lastName.value,
      status: user.status,
      created_at: user.createdAt,
      updated_at: user.updatedAt,
      tokens_valid_after: user.tokensValidAfter ?? null,
      disabled_reason: user.disabledReason ?? null,
    };
  },

  toDomain(row: UserRow): User {
    if (!statuses.has(row.status)) throw new Error(`users.status has an unknown value for user ${row.id}`);
    return User.restore({
      id: UserId.fromTrusted(row.id),
      email: Email.fromTrusted(row.email ?? ''),
      firstName: PersonName.fromTrusted(row.first_name ?? ''),
      lastName: PersonName.fromTrusted(row.last_name ?? ''),
      passwordHash: PasswordHash.fromTrusted(row.password_hash ?? ''),
      status: row.status as UserStatus,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
      tokensValidAfter: row.tokens_valid_after === null || row.tokens_valid_after === undefined ? undefined : new Date(row.tokens_valid_after),
      disabledReason: row.disabled_reason ?? undefined,
    });
  },
};
