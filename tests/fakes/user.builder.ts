import { User } from '../../src/domain/identity/user.entity.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { FakePasswordHasher } from './password-hasher.fake.js';

interface UserSpec {
  readonly email?: string;
  readonly password?: string;
  /** The cost the stored hash was made with (FakePasswordHasher's default is 12). */
  readonly cost?: number;
  readonly status?: UserStatus;
  readonly updatedAt?: Date;
}

/** A stored user as an earlier registration left it, its hash made by FakePasswordHasher. */
export function aUser(spec: UserSpec = {}): User {
  const email = Email.parse(spec.email ?? 'Ann.Lee@example.com');
  const first = PersonName.parse('Ann');
  const last = PersonName.parse('Lee');
  if (!email.ok || !first.ok || !last.ok) throw new Error('aUser: invalid spec');
  const at = new Date('2025-06-01T00:00:00Z');
  return User.restore({
    id: UserId.generate(),
    email: email.value,
    firstName: first.value,
    lastName: last.value,
    passwordHash: FakePasswordHasher.hashOf(spec.password ?? 'correct horse battery', spec.cost ?? 12),
    status: spec.status ?? UserStatus.Active,
    createdAt: at,
    updatedAt: spec.updatedAt ?? at,
  });
}

/** The same user as changed by someone else: `status`, and a newer updated_at. */
export function changedBySomeoneElse(user: User, status: UserStatus, at: Date): User {
  return User.restore({
    id: user.id,
    email: user.email,
    firstName: user.firstName,
    lastName: user.lastName,
    passwordHash: user.passwordHash,
    status,
    createdAt: user.createdAt,
    updatedAt: at,
  });
}
