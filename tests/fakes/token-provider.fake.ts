import { randomUUID } from 'node:crypto';
import type { Clock } from '../../src/application/ports/clock.port.js';
import type { IssuedToken, TokenProvider, VerifiedToken } from '../../src/application/ports/token-provider.port.js';
import { InvalidTokenError, TokenFailureReason } from '../../src/domain/identity/identity.errors.js';
import type { SessionId } from '../../src/domain/identity/value-objects/session-id.value-object.js';
import type { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';

/**
 * Issues opaque tokens it remembers, and verifies them against its own clock as the JWT
 * provider does: a token it never issued is refused (signature), one past its expiry is
 * refused (expired), anything not shaped like its tokens is malformed.
 */
export class FakeTokenProvider implements TokenProvider {
  private readonly issued = new Map<string, VerifiedToken>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlSeconds = 3600,
  ) {}

  issue(userId: UserId, sessionId?: SessionId): Promise<IssuedToken> {
    const tokenId = randomUUID();
    const issuedAt = this.clock.now();
    const expiresAt = new Date(issuedAt.getTime() + this.ttlSeconds * 1000);
    const token = `fake.${tokenId}`;
    this.issued.set(token, { userId: userId.value, tokenId, issuedAt, expiresAt, ...(sessionId && { sessionId: sessionId.value }) });
    return Promise.resolve({ token, tokenId, issuedAt, expiresAt });
  }

  verify(token: string): Promise<VerifiedToken> {
    if (!token.startsWith('fake.')) return Promise.reject(new InvalidTokenError(TokenFailureReason.Malformed));
    const verified = this.issued.get(token);
    if (verified === undefined) return Promise.reject(new InvalidTokenError(TokenFailureReason.Signature));
    if (this.clock.now() >= verified.expiresAt) return Promise.reject(new InvalidTokenError(TokenFailureReason.Expired));
    return Promise.resolve(verified);
  }
}
