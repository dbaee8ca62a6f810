import { err, ok, type Result } from '../../shared/result.js';
import { Secret } from '../../shared/secret.js';
import { codePointLength, isValidUnicode, utf8Length } from '../../shared/text.js';

/** bcrypt reads at most 72 bytes; a longer password is refused rather than silently cut. */
export const MAX_PASSWORD_BYTES = 72;

/** A password as a caller typed it, NFKC-normalised; it prints as a placeholder everywhere. */
export class PlainPassword extends Secret {
  /** The checks Authenticate makes: present, encodable and within bcrypt's input. */
  static parse(raw: string): Result<PlainPassword, string> {
    if (!isValidUnicode(raw)) return err('must be valid UTF-8');
    const text = raw.normalize('NFKC');
    if (text.length === 0) return err('is required');
    if (utf8Length(text) > MAX_PASSWORD_BYTES) return err(`must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`);
    return ok(new PlainPassword(text));
  }

  get length(): number {
    return codePointLength(this.reveal());
  }
}
