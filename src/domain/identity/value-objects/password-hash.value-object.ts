import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * A stored password hash. It never leaves the service, so every way of printing it
 * (string, JSON, util.inspect) shows a placeholder; only `reveal()` gives the hash.
 */
export class PasswordHash {
  readonly #value: string;

  private constructor(value: string) {
    this.#value = value;
  }

  static fromTrusted(value: string): PasswordHash {
    return new PasswordHash(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `PasswordHash(${REDACTED})`;
  }
}
