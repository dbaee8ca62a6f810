import { UserAlreadyExistsError } from '../../domain/identity/identity.errors.js';
import type { PasswordPolicy } from '../../domain/identity/password-policy.js';
import type { PasswordHasher } from '../../application/ports/password-hasher.port.js';
import type { UserRepository } from '../../application/ports/user.repository.port.js';
import { User } from '../../domain/identity/user.entity.js';
import { Email } from '../../domain/identity/value-objects/email.value-object.js';
import { PersonName } from '../../domain/identity/value-objects/person-name.value-object.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';

export interface RegisterUserCommand {
  readonly email: string;
  readonly password: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly clientAddress: string;
  /** Aborted when the caller's deadline passes: the work stops and nothing is committed. */
  readonly signal?: AbortSignal;
}

export interface RegisterUserDeps {
  readonly uow: UnitOfWork;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly passwordPolicy: PasswordPolicy;
  readonly clock: Clock;
  readonly audit: AuditLog;
}

/** Stores a new user and its UserRegistered event in one transaction. */
export class RegisterUser {
  constructor(private readonly deps: RegisterUserDeps) {}

  async execute(command: RegisterUserCommand): Promise<User> {
    const { uow, users, hasher, clock, audit } = this.deps;
    const email = Email.parse(command.email);
    const input = requireValid({
      email,
      password: this.deps.passwordPolicy.check(command.password, email.ok ? email.value : undefined),
      first_name: PersonName.parse(command.firstName),
      last_name: PersonName.parse(command.lastName),
    });
    const entry = { action: 'register', clientAddress: command.clientAddress, email: input.email.value } as const;
    // Checked before hashing so a taken email costs no bcrypt; the unique index still decides races.
    if (await users.existsByEmail(input.email.key)) {
      audit.record({ ...entry, outcome: 'rejected' });
      throw new UserAlreadyExistsError();
    }
    const passwordHash = await hasher.hash(input.password, command.signal);
    const newUser = { email: input.email, firstName: input.first_name, lastName: input.last_name, passwordHash };
    try {
      const user = await uow.run(async (scope) => {
        const { user, event } = User.register(newUser, clock.now());
        await scope.users.save(user);
        await scope.outbox.add(event);
        return user;
      }, command.signal);
      audit.record({ ...entry, outcome: 'success', userId: user.id.value });
      return user;
    } catch (error) {
      if (error instanceof UserAlreadyExistsError) audit.record({ ...entry, outcome: 'rejected' });
      throw error;
    }
  }
}
