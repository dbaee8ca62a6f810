import { InvalidCredentialsError } from '../../domain/identity/identity.errors.js';
import type { PasswordPolicy } from '../../domain/identity/password-policy.js';
import { allSessionsRevoked } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { User } from '../../domain/identity/user.entity.js';
import { Email } from '../../domain/identity/value-objects/email.value-object.js';
import { PlainPassword } from '../../domain/identity/value-objects/plain-password.value-object.js';
import { CredentialCheck, parseLoginEmail } from '../credential-check.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { LoginThrottle } from '../ports/login-throttle.port.js';
import type { PasswordHasher } from '../ports/password-hasher.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import type { UserRepository } from '../ports/user.repository.port.js';

export interface ChangePasswordCommand {
  readonly email: string;
  readonly currentPassword: string;
  readonly newPassword: string;
  readonly clientAddress: string;
  readonly signal?: AbortSignal;
}

export interface ChangePasswordDeps {
  readonly uow: UnitOfWork;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly passwordPolicy: PasswordPolicy;
  readonly clock: Clock;
  readonly audit: AuditLog;
}

/**
 * Re-authenticates exactly as Authenticate does (CredentialCheck: same throttle, same single
 * UNAUTHENTICATED), puts the new password through the policy, and in one transaction stores
 * it, sets tokens_valid_after, revokes every session of the user and writes
 * UserPasswordChanged and SessionRevoked.
 */
export class ChangePassword {
  private readonly credentials: CredentialCheck;

  constructor(private readonly deps: ChangePasswordDeps) {
    this.credentials = new CredentialCheck(deps);
  }

  async execute(command: ChangePasswordCommand): Promise<User> {
    const { uow, hasher, clock, audit, passwordPolicy } = this.deps;
    const email = Email.parse(command.email);
    const input = requireValid({
      email: parseLoginEmail(command.email),
      current_password: PlainPassword.parse(command.currentPassword),
      new_password: passwordPolicy.check(command.newPassword, email.ok ? email.value : undefined),
    });
    const { clientAddress, signal } = command;
    const user = await this.credentials.check({ emailKey: input.email, password: input.current_password, clientAddress, action: 'change_password', signal });
    const passwordHash = await hasher.hash(input.new_password, signal);
    const entry = { action: 'change_password', clientAddress, email: input.email, userId: user.id.value } as const;
    const changed = await uow.run(async (scope) => {
      const now = clock.now();
      const { user: changed, event } = user.changePassword(passwordHash, now, false);
      // Written only over the row as it was read: a user disabled meanwhile stays as it is.
      if (!(await scope.users.update(changed, user.updatedAt))) return undefined;
      await scope.sessions.revokeAllOfUser(user.id, SessionRevokedReason.PasswordChanged, now);
      await scope.outbox.add(event);
      await scope.outbox.add(allSessionsRevoked(user.id, SessionRevokedReason.PasswordChanged, now));
      return changed;
    }, signal);
    if (changed === undefined) {
      audit.record({ ...entry, outcome: 'failure' });
      throw new InvalidCredentialsError();
    }
    audit.record({ ...entry, outcome: 'success' });
    return changed;
  }
}
