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
   * The token as verify() would give it, when that is known without waiting (a token verified
   * before and remembered); undefined when only verify() can tell. Never throws for a bad token.
   * A provider that remembers nothing leaves it out.
   */
  verifyRemembered?(token: string): VerifiedToken | undefined;
}
