import type { Session } from '../../domain/identity/session.entity.js';
import type { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { RefreshTokenDigest } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

/** Sessions and the digests of every refresh token they were given. Used inside a unit of work. */
export interface SessionRepository {
  /**
   * Inserts a new session with its first refresh token, unless its user is no longer active
   * (disabled or deleted): false then, and nothing is written. The user's row is share-locked
   * until the transaction ends, so a disable either came first and is seen, or waits for this
   * transaction and then revokes the session.
   */
  addIfUserActive(session: Session): Promise<boolean>;
  /**
   * The session that was given this refresh token (the current one or any consumed one),
   * locked until the transaction ends: concurrent refreshes of one session take turns, so
   * the second sees the first's rotation. With it, whether its user is active (read in the
   * same statement, not locked: a disable revokes the session, and waits for this lock to).
   */
  findByRefreshTokenForUpdate(digest: RefreshTokenDigest): Promise<{ readonly session: Session; readonly userActive: boolean } | undefined>;
  /** Writes a rotation: the session's new current token is recorded as given to it. */
  saveRotation(session: Session): Promise<void>;
  /** Writes a session's revocation (revoked_at and reason). */
  saveRevocation(session: Session): Promise<void>;
  /** Revokes every live session of the user; answers how many there were. */
  revokeAllOfUser(userId: UserId, reason: SessionRevokedReason, now: Date): Promise<number>;
  /** The user's sessions that are neither revoked nor expired at `now`, oldest first. */
  listLiveOfUser(userId: UserId, now: Date): Promise<Session[]>;
  /** Blanks the client addresses of every session of the user (erasure: an address is personal data). */
  eraseClientAddresses(userId: UserId): Promise<void>;
}
