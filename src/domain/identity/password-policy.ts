import { err, ok, type Result } from '../shared/result.js';
import type { Email } from './value-objects/email.value-object.js';
import { PlainPassword } from './value-objects/plain-password.value-object.js';

export interface PasswordPolicyOptions {
  /** Minimum length in characters (code points) after NFKC. */
  readonly minLength: number;
  /** Known breached passwords, lower-case. */
  readonly commonPasswords: ReadonlySet<string>;
}

/**
 * The rules for a new password, NIST SP 800-63B style: a length floor, bcrypt's 72-byte
 * ceiling, no common password and not the email itself; no composition rules.
 */
export class PasswordPolicy {
  constructor(private readonly options: PasswordPolicyOptions) {}

  check(raw: string, email: Email | undefined): Result<PlainPassword, string> {
    const parsed = PlainPassword.parse(raw);
    if (!parsed.ok) return parsed;
    const password = parsed.value;
    const text = password.reveal();
    if (password.length < this.options.minLength) {
      return err(`must be at least ${this.options.minLength} characters`);
    }
    // bcrypt ends its input at the first NUL, so anything after it would be ignored.
    if (text.includes('\0')) return err('must not contain NUL');
    const lower = text.toLowerCase();
    if (this.options.commonPasswords.has(lower)) return err('is too common');
    if (email !== undefined && lower === email.value.normalize('NFKC').toLowerCase()) return err('must not equal the email');
    return ok(password);
  }
}
