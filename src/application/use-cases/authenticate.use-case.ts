import { InvalidCredentialsError, TooManyAttemptsError } from '../../domain/identity/identity.errors.js';
import type { PasswordHasher } from '../../application/ports/password-hasher.port.js';
import type { IssuedToken, TokenProvider } from '../../application/ports/token-provider.port.js';
import type { UserRepository } from '../../application/ports/user.repository.port.js';
import type { User } from '../../domain/identity/user.entity.js';
import { emailKey, lowerCaseDomain, normaliseEmail } from '../../domain/identity/value-objects/email.value-object.js';
import { PlainPassword } from '../../domain/identity/value-objects/plain-password.value-object.js';
import { err, ok, type Result } from '../../domain/shared/result.js';
import { isValidUnicode, utf8Length } from '../../domain/shared/text.js';
import { OverloadedError, ServiceUnavailableError } from '../application.errors.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { AttemptKeys, LoginThrottle } from '../ports/login-throttle.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';

const MAX_EMAIL_BYTES = 254;

export interface AuthenticateCommand {
  readonly email: string;
  readonly password: string;
  readonly clientAddress: string;
  /** Aborted when the caller's deadline passes. */
  readonly signal?: AbortSignal;
}

export interface AuthenticateDeps {
  readonly uow: UnitOfWork;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly tokens: TokenProvider;
  readonly throttle: LoginThrottle;
  readonly clock: Clock;
  readonly audit: AuditLog;
}

export interface Authenticated {
  readonly user: User;
  readonly token: IssuedToken;
}

/**
 * Checks an email and password and issues an access token. Unknown email, wrong password
 * and disabled user take the same path (one bcrypt comparison) and end in the same error.
 */
export class Authenticate {
  constructor(private readonly deps: AuthenticateDeps) {}

  async execute(command: AuthenticateCommand): Promise<Authenticated> {
    const { throttle, audit } = this.deps;
    const input = requireValid({ email: parseLoginEmail(command.email), password: PlainPassword.parse(command.password) });
    const keys: AttemptKeys = { emailKey: input.email, clientAddress: command.clientAddress };
    const entry = { action: 'login', clientAddress: command.clientAddress, email: input.email } as const;
    try {
      await throttle.begin(keys);
    } catch (error) {
      if (error instanceof TooManyAttemptsError) audit.record({ ...entry, outcome: 'throttled' });
      throw error;
    }
    const { user, matches } = await this.checkPassword(keys, input.password, command.signal);
    if (!matches || user === undefined || !user.isActive) {
      // Already counted by begin(): a failure needs no second write.
      audit.record({ ...entry, outcome: 'failure', ...(user && { userId: user.id.value }) });
      throw new InvalidCredentialsError();
    }
    await throttle.succeeded(keys);
    const current = await this.upgradeHash(user, input.password, command.signal);
    const token = await this.deps.tokens.issue(current.id);
    audit.record({ ...entry, outcome: 'success', userId: current.id.value });
    return { user: current, token };
  }

  /**
   * Looks the user up and compares the password: one comparison whether or not the user
   * exists. An attempt that ended before any comparison ran (hashing queue full, database
   * down) is not held against the caller; one cut short by its deadline is, as bcrypt ran.
   */
  private async checkPassword(keys: AttemptKeys, password: PlainPassword, signal?: AbortSignal) {
    const { users, hasher, throttle } = this.deps;
    try {
      const user = await users.findByEmail(keys.emailKey);
      return { user, matches: await hasher.verify(password, user?.passwordHash, signal) };
    } catch (error) {
      if (error instanceof OverloadedError || error instanceof ServiceUnavailableError) {
        await throttle.abandoned(keys).catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * A hash made at a lower cost than configured is replaced while the password is at hand.
   * Best effort: the login already succeeded, so a busy hasher only postpones the upgrade to a
   * later login, and a user changed meanwhile (disabled, say) is left as it now is.
   */
  private async upgradeHash(user: User, password: PlainPassword, signal?: AbortSignal): Promise<User> {
    const { hasher, uow, clock } = this.deps;
    if (!hasher.needsRehash(user.passwordHash)) return user;
    try {
      const updated = user.withPasswordHash(await hasher.hash(password, signal), clock.now());
      const written = await uow.run((scope) => scope.users.update(updated, user.updatedAt), signal);
      return written ? updated : user;
    } catch (error) {
      if (error instanceof OverloadedError) return user;
      throw error;
    }
  }
}

/** Authenticate only checks that the email is present and within its byte limit. */
function parseLoginEmail(raw: string): Result<string, string> {
  if (!isValidUnicode(raw)) return err('must be valid UTF-8');
  const typed = normaliseEmail(raw);
  if (typed.length === 0) return err('is required');
  // Lower-casing can change a character's length (U+023A: 2 bytes, lower case 3; the Kelvin
  // sign: 3 bytes, lower case 1), so the address registered may be within the limit in one
  // spelling only: any spelling within it will do, lest a registered user be locked out.
  const key = emailKey(raw);
  if (Math.min(utf8Length(typed), utf8Length(key), utf8Length(storedSpelling(typed))) > MAX_EMAIL_BYTES) {
    return err(`must be at most ${MAX_EMAIL_BYTES} bytes`);
  }
  return ok(key);
}

/** The address as registration stores it: the local part as typed, the domain lower-cased. */
function storedSpelling(typed: string): string {
  const at = typed.lastIndexOf('@');
  return at < 0 ? typed : `${typed.slice(0, at)}@${lowerCaseDomain(typed.slice(at + 1))}`;
}
