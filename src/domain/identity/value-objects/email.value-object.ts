import { err, ok, type Result } from '../../shared/result.js';
import { hasControlCharacter, isValidUnicode, utf8Length } from '../../shared/text.js';

const MAX_BYTES = 254;
const MAX_LOCAL_BYTES = 64;
const MAX_LABEL_BYTES = 63;

/**
 * A normalised email address: trimmed, NFC, domain lower-cased, local part as given.
 * Two addresses are the same user when their `key` (see `emailKey`) is equal.
 */
export class Email {
  private constructor(readonly value: string) {}

  /** The case-insensitive identity of the address, stored under a unique index. */
  get key(): string {
    return emailKey(this.value);
  }

  static parse(raw: string): Result<Email, string> {
    if (!isValidUnicode(raw)) return err('must be valid UTF-8');
    const text = normaliseEmail(raw);
    if (text.length === 0) return err('is required');
    if (hasControlCharacter(text)) return err('must not contain control characters');
    const parts = text.split('@');
    if (parts.length !== 2) return err('must contain exactly one @');
    // The limits apply to the address as stored: lower-casing can change a character's UTF-8
    // length (U+023A is 2 bytes, its lower case U+2C65 is 3).
    const [local = '', typedDomain = ''] = parts;
    const domain = lowerCaseDomain(typedDomain);
    const address = `${local}@${domain}`;
    if (utf8Length(address) > MAX_BYTES) return err(`must be at most ${MAX_BYTES} bytes`);
    const localBytes = utf8Length(local);
    if (localBytes < 1 || localBytes > MAX_LOCAL_BYTES) {
      return err(`local part must be 1 to ${MAX_LOCAL_BYTES} bytes`);
    }
    const labelsOk = domain.split('.').every((label) => {
      const bytes = utf8Length(label);
      return bytes >= 1 && bytes <= MAX_LABEL_BYTES;
    });
    if (!labelsOk) return err(`domain must be dot-separated labels of 1 to ${MAX_LABEL_BYTES} bytes`);
    return ok(new Email(address));
  }

  /** Rebuilds an address read back from storage, where it was valid when written. */
  static fromTrusted(value: string): Email {
    return new Email(value);
  }

  toString(): string {
    return this.value;
  }
}

/** Trim and NFC, as the contract normalises every email before any rule applies. */
export const normaliseEmail = (raw: string): string => raw.trim().normalize('NFC');

/**
 * The domain as stored: lower-cased, then NFC again, since lower-casing can undo NFC (`T̈`
 * has no precomposed form, `ẗ` has: U+0074 U+0308 composes to U+1E97).
 */
export const lowerCaseDomain = (domain: string): string => domain.toLowerCase().normalize('NFC');

/**
 * The uniqueness key, the one function registration (`Email.key`, stored in users.email_key)
 * and login (for any string a caller presents, valid or not) both use: NFC, lower-case, NFC.
 * NFC first so that canonically equal spellings lower-case alike; NFC last because
 * lower-casing can leave a sequence that composes (`aT̈` and `aẗ` are one address).
 * Changing it changes keys already stored: it needs a migration like 0006-rekey-emails.
 */
export const emailKey = (raw: string): string => normaliseEmail(raw).toLowerCase().normalize('NFC');
