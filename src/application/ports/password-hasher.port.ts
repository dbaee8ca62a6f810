import type { PasswordHash } from '../../domain/identity/value-objects/password-hash.value-object.js';
import type { PlainPassword } from '../../domain/identity/value-objects/plain-password.value-object.js';

export interface PasswordHasher {
  hash(password: PlainPassword, signal?: AbortSignal): Promise<PasswordHash>;
  /**
   * Compares a password with a hash. With no hash (unknown user) it still spends one
   * comparison, against a dummy hash of the configured cost, and answers false.
   */
  verify(password: PlainPassword, hash: PasswordHash | undefined, signal?: AbortSignal): Promise<boolean>;
  /** True when the hash was made with a lower cost (or another scheme) than configured. */
  needsRehash(hash: PasswordHash): boolean;
}
