import type { Knex } from 'knex';
import type { SessionRepository } from '../../application/ports/session.repository.port.js';
import type { Session } from '../../domain/identity/session.entity.js';
import type { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { RefreshTokenDigest } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import { withDbErrors } from './db-errors.js';
import { sessionMapper, type SessionRow } from './session.mapper.js';

/** Sessions in PostgreSQL, through a Knex transaction (the unit of work's). */
export class KnexSessionRepository implements SessionRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  add(session: Session): Promise<void> {
    return withDbErrors(async () => {
      await this.db('sessions').insert(sessionMapper.toPersistence(session));
      await this.db('refresh_tokens').insert({ token_hash: session.refreshTokenHash.bytes, session_id: session.id.value, issued_at: session.createdAt });
    });
  }

  findByRefreshTokenForUpdate(digest: RefreshTokenDigest): Promise<Session | undefined> {
    return withDbErrors(async () => {
      // FOR UPDATE OF s: the session row is what concurrent refreshes queue on; READ COMMITTED
      // hands the one that waited the row as the winner left it.
      const row = (await this.db('refresh_tokens as t')
        .join('sessions as s', 's.id', 't.session_id')
        .where('t.token_hash', digest.bytes)
        .select('s.*')
        .forUpdate('s')
        .first()) as SessionRow | undefined;
      return row === undefined ? undefined : sessionMapper.toDomain(row);
    });
  }

  saveRotation(session: Session): Promise<void> {
    return withDbErrors(async () => {
      await this.db('sessions').where({ id: session.id.value }).update({
        refresh_token_hash: session.refreshTokenHash.bytes,
        previous_refresh_token_hash: session.previousRefreshTokenHash?.bytes ?? null,
        last_refreshed_at: session.lastRefreshedAt,
        idle_expires_at: session.idleExpiresAt,
      });
      await this.db('refresh_tokens').insert({ token_hash: session.refreshTokenHash.bytes, session_id: session.id.value, issued_at: session.lastRefreshedAt });
    });
  }

  saveRevocation(session: Session): Promise<void> {
    return withDbErrors(async () => {
      await this.db('sessions').where({ id: session.id.value }).whereNull('revoked_at').update({ revoked_at: session.revokedAt ?? null, revoked_reason: session.revokedReason ?? null });
    });
  }

  revokeAllOfUser(userId: UserId, reason: SessionRevokedReason, now: Date): Promise<number> {
    return withDbErrors(() => this.db('sessions').where({ user_id: userId.value }).whereNull('revoked_at').update({ revoked_at: now, revoked_reason: reason }));
  }
}
