import { randomUUID } from 'node:crypto';
import type { SessionRevokedEvent } from './events/session-revoked.event.js';
import { SessionRevokedReason } from './session-revoked-reason.js';
import { RefreshToken, type RefreshTokenDigest } from './value-objects/refresh-token.value-object.js';
import { SessionId } from './value-objects/session-id.value-object.js';
import type { UserId } from './value-objects/user-id.value-object.js';

/** How long sessions live, and how long the token just replaced is still taken. */
export interface SessionPolicy {
  /** The session ends this long after its last refresh (SESSION_IDLE_SECONDS). */
  readonly idleSeconds: number;
  /** ... and at the latest this long after the login (SESSION_MAX_SECONDS). */
  readonly maxSeconds: number;
  /** The immediately previous refresh token is still accepted this long after its rotation. */
  readonly reuseGraceSeconds: number;
}

export interface SessionProps {
  readonly id: SessionId;
  readonly userId: UserId;
  readonly refreshTokenHash: RefreshTokenDigest;
  readonly previousRefreshTokenHash: RefreshTokenDigest | undefined;
  readonly createdAt: Date;
  readonly lastRefreshedAt: Date;
  readonly idleExpiresAt: Date;
  readonly expiresAt: Date;
  readonly revokedAt: Date | undefined;
  readonly revokedReason: SessionRevokedReason | undefined;
  readonly clientAddress: string;
}

/** What presenting a refresh token to its session came to. */
export type RefreshResult =
  | { readonly outcome: 'rotated' | 'grace'; readonly session: Session; readonly refreshToken: RefreshToken }
  | { readonly outcome: 'reused'; readonly session: Session; readonly event: SessionRevokedEvent }
  | { readonly outcome: 'expired' | 'revoked' };

const seconds = (date: Date, count: number) => new Date(date.getTime() + count * 1000);

/**
 * A login's session: one refresh token at a time, rotated on every use (RFC 9700 §4.14.2).
 * A consumed token presented again revokes the session, since the legitimate client and an
 * attacker then hold the same family. Immutable: a change returns a new Session.
 */
export class Session {
  private constructor(private readonly props: SessionProps) {}

  static open(userId: UserId, clientAddress: string, now: Date, policy: SessionPolicy): { session: Session; refreshToken: RefreshToken } {
    const refreshToken = RefreshToken.generate();
    const session = new Session({
      id: SessionId.generate(),
      userId,
      refreshTokenHash: refreshToken.digest(),
      previousRefreshTokenHash: undefined,
      createdAt: now,
      lastRefreshedAt: now,
      idleExpiresAt: seconds(now, policy.idleSeconds),
      expiresAt: seconds(now, policy.maxSeconds),
      revokedAt: undefined,
      revokedReason: undefined,
      clientAddress,
    });
    return { session, refreshToken };
  }

  static restore(props: SessionProps): Session {
    return new Session(props);
  }

  get id(): SessionId {
    return this.props.id;
  }
  get userId(): UserId {
    return this.props.userId;
  }
  get refreshTokenHash(): RefreshTokenDigest {
    return this.props.refreshTokenHash;
  }
  get previousRefreshTokenHash(): RefreshTokenDigest | undefined {
    return this.props.previousRefreshTokenHash;
  }
  get createdAt(): Date {
    return this.props.createdAt;
  }
  get lastRefreshedAt(): Date {
    return this.props.lastRefreshedAt;
  }
  get idleExpiresAt(): Date {
    return this.props.idleExpiresAt;
  }
  get expiresAt(): Date {
    return this.props.expiresAt;
  }
  get revokedAt(): Date | undefined {
    return this.props.revokedAt;
  }
  get revokedReason(): SessionRevokedReason | undefined {
    return this.props.revokedReason;
  }
  get clientAddress(): string {
    return this.props.clientAddress;
  }

  /** When the current refresh token stops working unless used: the idle or the absolute end. */
  get refreshExpiresAt(): Date {
    return this.props.idleExpiresAt < this.props.expiresAt ? this.props.idleExpiresAt : this.props.expiresAt;
  }

  isExpired(now: Date): boolean {
    return now.getTime() >= this.refreshExpiresAt.getTime();
  }

  /**
   * Consumes `presented`, a token issued to this session: the current one rotates; the one
   * just replaced rotates too within the grace; any other (consumed) one revokes the session.
   */
  refresh(presented: RefreshTokenDigest, now: Date, policy: SessionPolicy): RefreshResult {
    if (this.props.revokedAt !== undefined) return { outcome: 'revoked' };
    if (this.isExpired(now)) return { outcome: 'expired' };
    if (presented.equals(this.props.refreshTokenHash)) return { outcome: 'rotated', ...this.rotate(now, policy) };
    const sinceRotation = now.getTime() - this.props.lastRefreshedAt.getTime();
    if (presented.equals(this.props.previousRefreshTokenHash) && sinceRotation <= policy.reuseGraceSeconds * 1000) {
      return { outcome: 'grace', ...this.rotate(now, policy) };
    }
    return { outcome: 'reused', ...this.revoke(SessionRevokedReason.RefreshTokenReused, now) };
  }

  revoke(reason: SessionRevokedReason, now: Date): { session: Session; event: SessionRevokedEvent } {
    const session = new Session({ ...this.props, revokedAt: now, revokedReason: reason });
    const event: SessionRevokedEvent = {
      type: 'identity.v1.SessionRevoked',
      eventId: randomUUID(),
      aggregateId: this.props.userId.value,
      userId: this.props.userId.value,
      sessionId: this.props.id.value,
      reason,
      occurredAt: now,
    };
    return { session, event };
  }

  private rotate(now: Date, policy: SessionPolicy): { session: Session; refreshToken: RefreshToken } {
    const refreshToken = RefreshToken.generate();
    const idle = seconds(now, policy.idleSeconds);
    const session = new Session({
      ...this.props,
      refreshTokenHash: refreshToken.digest(),
      previousRefreshTokenHash: this.props.refreshTokenHash,
      lastRefreshedAt: now,
      idleExpiresAt: idle,
    });
    return { session, refreshToken };
  }
}

/** The event of revoking every session of a user at once; tokens issued before `now` are refused. */
export function allSessionsRevoked(userId: UserId, reason: SessionRevokedReason, now: Date): SessionRevokedEvent {
  return {
    type: 'identity.v1.SessionRevoked',
    eventId: randomUUID(),
    aggregateId: userId.value,
    userId: userId.value,
    sessionId: '',
    reason,
    tokensValidAfter: now,
    occurredAt: now,
  };
}
