import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * A value that must never reach a log line, an error message or an event: every way of
 * printing it (string, JSON, util.inspect) shows a placeholder; only `reveal()` gives it.
 */
export abstract class Secret {
  readonly #value: string;

  protected constructor(value: string) {
    this.#value = value;
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
    return `${this.constructor.name}(${REDACTED})`;
  }
}
