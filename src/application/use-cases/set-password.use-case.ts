import type { PasswordPolicy } from '../../domain/identity/password-policy.js';
import { allSessionsRevoked } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { User } from '../../domain/identity/user.entity.js';
import { requireValid } from '../field-validation.js';
import { findManagedUser, lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { PasswordHasher } from '../ports/password-hasher.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import type { UserRepository } from '../ports/user.repository.port.js';
import { parseUserId } from '../user-id-input.js';

export interface SetPasswordCommand {
  readonly userId: string;
  readonly newPassword: string;
  readonly signal?: AbortSignal;
}

export interface SetPasswordDeps {
  readonly uow: UnitOfWork;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly passwordPolicy: PasswordPolicy;
  readonly clock: Clock;
}

/**
 * An operator sets a user's password: the password rules apply (the email is needed for
 * one of them, so the user is read first), and in one transaction the hash is stored,
 * tokens_valid_after set, every session revoked, and UserPasswordChanged{by_admin} and
 * SessionRevoked written. A disabled user's password can be set; it stays disabled.
 */
export class SetPassword {
  constructor(private readonly deps: SetPasswordDeps) {}

  async execute(command: SetPasswordCommand): Promise<User> {
    const { uow, users, hasher, passwordPolicy, clock } = this.deps;
    const { user_id: userId } = requireValid({ user_id: parseUserId(command.userId) });
    const before = await findManagedUser(users, userId);
    const { new_password: password } = requireValid({ new_password: passwordPolicy.check(command.newPassword, before.email) });
    const passwordHash = await hasher.hash(password, command.signal);
    return uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, userId);
      const now = clock.now();
      const { user: changed, event } = user.changePassword(passwordHash, now, true);
      await scope.users.update(changed, user.updatedAt);
      await scope.sessions.revokeAllOfUser(user.id, SessionRevokedReason.PasswordChanged, now);
      await scope.outbox.add(event);
      await scope.outbox.add(allSessionsRevoked(user.id, SessionRevokedReason.PasswordChanged, now));
      return changed;
    }, command.signal);
  }
}
