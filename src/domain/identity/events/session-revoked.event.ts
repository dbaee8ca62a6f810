import type { SessionRevokedReason } from '../session-revoked-reason.js';

/**
 * Raised when one session (sessionId set) or every session of a user (sessionId empty,
 * tokensValidAfter set) is revoked. It never carries a token or a hash.
 */
export interface SessionRevokedEvent {
  readonly type: 'identity.v1.SessionRevoked';
  readonly eventId: string;
  readonly aggregateId: string;
  readonly userId: string;
  readonly sessionId: string;
  readonly reason: SessionRevokedReason;
  readonly tokensValidAfter?: Date;
  readonly occurredAt: Date;
}
