import type { VerifiedToken } from './token-provider.port.js';

/**
 * What VerifyToken asks after a token's signature and claims are good: was it revoked since?
 * Answered from memory, with no database query per call (the implementation keeps itself
 * current from the database's notifications and a periodic resync).
 */
export interface RevocationList {
  /**
   * Throws InvalidTokenError (reason `revoked`) when the token's session was revoked, its user
   * is disabled or deleted, or it was issued before the user's tokens_valid_after.
   */
  check(token: VerifiedToken): void;
}
