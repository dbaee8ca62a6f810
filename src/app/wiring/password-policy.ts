import { dictionary } from '@zxcvbn-ts/language-common';
import { PasswordPolicy } from '../../domain/identity/password-policy.js';
import type { Config } from '../../infrastructure/config/load-config.js';

/** The contract's password rules, with zxcvbn's list of common passwords as the breached list. */
export function passwordPolicy(config: Config): PasswordPolicy {
  const commonPasswords = new Set((dictionary['passwords-common'] ?? []).map((word) => word.toLowerCase()));
  return new PasswordPolicy({ minLength: config.PASSWORD_MIN_LENGTH, commonPasswords });
}
