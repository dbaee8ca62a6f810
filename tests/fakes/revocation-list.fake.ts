import type { RevocationList } from '../../src/application/ports/revocation-list.port.js';
import type { VerifiedToken } from '../../src/application/ports/token-provider.port.js';
import { InvalidTokenError, TokenFailureReason } from '../../src/domain/identity/identity.errors.js';

/** Sessions the test revoked; a token of one of them is refused as the real list refuses it. */
export class FakeRevocationList implements RevocationList {
  readonly revokedSessions = new Set<string>();

  check(token: VerifiedToken): void {
    if (token.sessionId !== undefined && this.revokedSessions.has(token.sessionId)) throw new InvalidTokenError(TokenFailureReason.Revoked);
  }
}
