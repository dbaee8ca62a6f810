import type { SessionRepository } from '../../src/application/ports/session.repository.port.js';
import type { SessionRevokedReason } from '../../src/domain/identity/session-revoked-reason.js';
import { Session } from '../../src/domain/identity/session.entity.js';
import type { RefreshTokenDigest } from '../../src/domain/identity/value-objects/refresh-token.value-object.js';
import type { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';

/**
 * Sessions in a Map, with every write journalled so that FakeUnitOfWork commits them all or
 * none, as it does the users'. A refresh token is found while it is a session's current or
 * immediately previous one (all the entity keeps); the user's status comes from `userActive`.
 */
export class FakeSessionRepository implements SessionRepository {
  readonly journal: ((target: FakeSessionRepository) => void)[] = [];

  constructor(
    private readonly rows = new Map<string, Session>(),
    private readonly userActive: (userId: UserId) => boolean = () => true,
  ) {}

  get all(): Session[] {
    return [...this.rows.values()];
  }

  snapshot(): FakeSessionRepository {
    return new FakeSessionRepository(new Map(this.rows), this.userActive);
  }

  /** Replays a transaction's writes all or none. */
  applyAll(writes: readonly ((target: FakeSessionRepository) => void)[]): void {
    const next = this.snapshot();
    for (const write of writes) write(next);
    this.rows.clear();
    for (const [id, session] of next.rows) this.rows.set(id, session);
  }

  /** Whether the user is active comes from `userActive`, as the SQL reads the users table. */
  async addIfUserActive(session: Session): Promise<boolean> {
    if (!this.userActive(session.userId)) return false;
    await this.write((target) => {
      if (target.rows.has(session.id.value)) throw new Error(`duplicate session ${session.id.value}`);
      target.rows.set(session.id.value, session);
    });
    return true;
  }

  findByRefreshTokenForUpdate(digest: RefreshTokenDigest) {
    const session = this.all.find((s) => s.refreshTokenHash.equals(digest) || (s.previousRefreshTokenHash?.equals(digest) ?? false));
    return Promise.resolve(session && { session, userActive: this.userActive(session.userId) });
  }

  saveRotation(session: Session): Promise<void> {
    return this.write((target) => target.rows.set(session.id.value, session));
  }

  saveRevocation(session: Session): Promise<void> {
    return this.write((target) => target.rows.set(session.id.value, session));
  }

  async revokeAllOfUser(userId: UserId, reason: SessionRevokedReason, now: Date): Promise<number> {
    const live = this.all.filter((s) => s.userId.equals(userId) && s.revokedAt === undefined);
    for (const session of live) await this.saveRevocation(session.revoke(reason, now).session);
    return live.length;
  }

  listLiveOfUser(userId: UserId, now: Date): Promise<Session[]> {
    const live = this.all.filter((s) => s.userId.equals(userId) && s.revokedAt === undefined && !s.isExpired(now));
    return Promise.resolve(live.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()));
  }

  eraseClientAddresses(userId: UserId): Promise<void> {
    return this.write((target) => {
      for (const s of target.all.filter((session) => session.userId.equals(userId))) {
        target.rows.set(
          s.id.value,
          Session.restore({
            id: s.id,
            userId: s.userId,
            refreshTokenHash: s.refreshTokenHash,
            previousRefreshTokenHash: s.previousRefreshTokenHash,
            createdAt: s.createdAt,
            lastRefreshedAt: s.lastRefreshedAt,
            idleExpiresAt: s.idleExpiresAt,
            expiresAt: s.expiresAt,
            revokedAt: s.revokedAt,
            revokedReason: s.revokedReason,
            clientAddress: '',
          }),
        );
      }
    });
  }

  private write(change: (target: FakeSessionRepository) => void): Promise<void> {
    return new Promise((resolve) => {
      change(this);
      this.journal.push(change);
      resolve();
    });
  }
}
