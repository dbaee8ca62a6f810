import { err, ok, type Result } from '../../shared/result.js';
import { codePointLength, hasControlCharacter, isValidUnicode } from '../../shared/text.js';

const MAX_CODE_POINTS = 50;

/** A first or last name: trimmed, NFC, 1 to 50 code points, no control characters. */
export class PersonName {
  private constructor(readonly value: string) {}

  static parse(raw: string): Result<PersonName, string> {
    if (!isValidUnicode(raw)) return err('must be valid UTF-8');
    const text = raw.trim().normalize('NFC');
    if (text.length === 0) return err('is required');
    if (codePointLength(text) > MAX_CODE_POINTS) return err(`must be at most ${MAX_CODE_POINTS} characters`);
    if (hasControlCharacter(text)) return err('must not contain control characters');
    return ok(new PersonName(text));
  }

  static fromTrusted(value: string): PersonName {
    return new PersonName(value);
  }

  toString(): string {
    return this.value;
  }
}
