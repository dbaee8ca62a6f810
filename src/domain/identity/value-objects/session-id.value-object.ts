import { randomUUID } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A session's identity: a lower-case UUID, the `sid` claim of the access tokens it issues. */
export class SessionId {
  private constructor(readonly value: string) {}

  static generate(): SessionId {
    return new SessionId(randomUUID());
  }

  static isValid(value: string): boolean {
    return UUID.test(value);
  }

  static fromTrusted(value: string): SessionId {
    return new SessionId(value);
  }

  toString(): string {
    return this.value;
  }
}
