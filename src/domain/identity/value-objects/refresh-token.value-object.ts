import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Secret } from '../../shared/secret.js';

/** 32 random bytes: 256 bits, as RFC 9700 and the contract ask (≥ 32). */
const TOKEN_BYTES = 32;
/** Far above a token we issue (43 characters); a longer string is no token of ours. */
const MAX_PRESENTED_LENGTH = 512;

/** The SHA-256 of a refresh token: all the database ever holds of it. */
export class RefreshTokenDigest {
  private constructor(readonly bytes: Buffer) {}

  static fromTrusted(bytes: Uint8Array): RefreshTokenDigest {
    return new RefreshTokenDigest(Buffer.from(bytes));
  }

  equals(other: RefreshTokenDigest | undefined): boolean {
    return other !== undefined && timingSafeEqual(this.bytes, other.bytes);
  }
}

/**
 * An opaque refresh token: base64url of 32 random bytes. It is a Secret, so it prints as a
 * placeholder in logs, errors and JSON; only its digest is stored.
 */
export class RefreshToken extends Secret {
  static generate(): RefreshToken {
    return new RefreshToken(randomBytes(TOKEN_BYTES).toString('base64url'));
  }

  /** A token as a caller presented it; undefined when it cannot be one of ours. */
  static presented(raw: string): RefreshToken | undefined {
    return raw.length === 0 || raw.length > MAX_PRESENTED_LENGTH ? undefined : new RefreshToken(raw);
  }

  digest(): RefreshTokenDigest {
    return RefreshTokenDigest.fromTrusted(createHash('sha256').update(this.reveal()).digest());
  }
}
