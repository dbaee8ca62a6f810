import { Secret } from '../../shared/secret.js';

/** A stored password hash. It never leaves the service, so it prints as a placeholder. */
export class PasswordHash extends Secret {
  static fromTrusted(value: string): PasswordHash {
    return new PasswordHash(value);
  }
}
