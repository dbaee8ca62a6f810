import type { SessionId } from '../../domain/identity/value-objects/session-id.value-object.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

export interface IssuedToken {
  readonly token: string;
  readonly tokenId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface VerifiedToken {
  readonly userId: string;
  readonly tokenId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  /** The `sid` claim: the session the token belongs to; absent on tokens issued before sessions. */
  readonly sessionId?: string;
}

export interface TokenProvider {
  /** Signs an access token for the user, with claim sid when it belongs to a session. */
  issue(userId: UserId, sessionId?: SessionId): Promise<IssuedToken>;
  /** Throws InvalidTokenError with the reason when the token is bad in any way. */
  verify(token: string): Promise<VerifiedToken>;
  /**
   * verify()'s outcome when it is known without waiting: the token (remembered, or its signature
   * checked on the calling thread), or the InvalidTokenError verify() would reject with, thrown.
   * Undefined when only verify() can tell (its signature is checked elsewhere); verify() of that
   * token next does not count it twice. A provider that can tell nothing at once leaves it out.
   */
  verifyNow?(token: string): VerifiedToken | undefined;
}
