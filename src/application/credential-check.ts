import { InvalidCredentialsError, TooManyAttemptsError } from '../domain/identity/identity.errors.js';
import type { User } from '../domain/identity/user.entity.js';
import { emailKey, lowerCaseDomain, normaliseEmail } from '../domain/identity/value-objects/email.value-object.js';
import type { PlainPassword } from '../domain/identity/value-objects/plain-password.value-object.js';
import { err, ok, type Result } from '../domain/shared/result.js';
import { isValidUnicode, utf8Length } from '../domain/shared/text.js';
import { OverloadedError, ServiceUnavailableError } from './application.errors.js';
import type { AuditAction, AuditLog } from './ports/audit-log.port.js';
import type { AttemptKeys, LoginThrottle } from './ports/login-throttle.port.js';
import type { PasswordHasher } from './ports/password-hasher.port.js';
import type { UserRepository } from './ports/user.repository.port.js';

const MAX_EMAIL_BYTES = 254;

export interface CredentialCheckDeps {
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly audit: AuditLog;
}

export interface Credentials {
  /** The email's key, from parseLoginEmail. */
  readonly emailKey: string;
  readonly password: PlainPassword;
  readonly clientAddress: string;
  readonly action: AuditAction;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The one path that checks an email and a password, for Authenticate and ChangePassword alike:
 * the same throttle (counted against the same keys), one bcrypt comparison whether or not
 * the user exists, and the same single InvalidCredentialsError for an unknown email, a wrong
 * password and a disabled user.
 */
export class CredentialCheck {
  constructor(private readonly deps: CredentialCheckDeps) {}

  /** The user whose password this is; throws InvalidCredentialsError or TooManyAttemptsError. */
  async check(credentials: Credentials): Promise<User> {
    const { throttle, audit } = this.deps;
    const keys: AttemptKeys = { emailKey: credentials.emailKey, clientAddress: credentials.clientAddress };
    const entry = { action: credentials.action, clientAddress: credentials.clientAddress, email: credentials.emailKey };
    try {
      await throttle.begin(keys);
    } catch (error) {
      if (error instanceof TooManyAttemptsError) audit.record({ ...entry, outcome: 'throttled' });
      throw error;
    }
    const { user, matches } = await this.checkPassword(keys, credentials.password, credentials.signal);
    if (!matches || user === undefined || !user.isActive) {
      // Already counted by begin(): a failure needs no second write.
      audit.record({ ...entry, outcome: 'failure', ...(user && { userId: user.id.value }) });
      throw new InvalidCredentialsError();
    }
    await throttle.succeeded(keys);
    return user;
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
}

/** A login only checks that the email is present and within its byte limit; the result is its key. */
export function parseLoginEmail(raw: string): Result<string, string> {
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
