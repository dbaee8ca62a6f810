import type { Knex } from 'knex';
import type { SessionRepository } from '../../application/ports/session.repository.port.js';
import type { Session } from '../../domain/identity/session.entity.js';
import type { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { RefreshTokenDigest } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import { withDbErrors } from './db-errors.js';
import { sessionMapper, type SessionRow } from './session.mapper.js';

/** Sessions in PostgreSQL, through a Knex transaction (the unit of work's). */
export class KnexSessionRepository implements SessionRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  addIfUserActive(session: Session): Promise<boolean> {
    // One statement (one round trip) for the lock, the check and both rows.
    return withDbErrors(async () => {
      const row = sessionMapper.toPersistence(session);
      const columns = Object.keys(row) as (keyof SessionRow)[];
      const result = await this.db.raw<{ rows: unknown[] }>(
        `with active as (select id from users where id = ? and status = ? for share),
         opened as (insert into sessions (${columns.map(() => '??').join(', ')}) select ${columns.map(() => '?').join(', ')} from active returning id)
         insert into refresh_tokens (token_hash, session_id, issued_at) select ?, id, ? from opened returning session_id`,
        [session.userId.value, UserStatus.Active, ...columns, ...columns.map((column) => row[column]), session.refreshTokenHash.bytes, session.createdAt],
      );
      return result.rows.length === 1;
    });
  }

  findByRefreshTokenForUpdate(digest: RefreshTokenDigest): Promise<{ session: Session; userActive: boolean } | undefined> {
    return withDbErrors(async () => {
      // FOR UPDATE OF s: the session row is what concurrent refreshes queue on; READ COMMITTED
      // hands the one that waited the row as the winner left it. One round trip for the
      // session, the lock and the user's status.
      const row = (await this.db('refresh_tokens as t')
        .join('sessions as s', 's.id', 't.session_id')
        .join('users as u', 'u.id', 's.user_id')
        .where('t.token_hash', digest.bytes)
        .select('s.*', 'u.status as user_status')
        .forUpdate('s')
        .first()) as (SessionRow & { user_status: string }) | undefined;
      return row === undefined ? undefined : { session: sessionMapper.toDomain(row), userActive: row.user_status === UserStatus.Active };
    });
  }

  saveRotation(session: Session): Promise<void> {
    // One statement (one round trip): the session's new state and its new token's record.
    return withDbErrors(async () => {
      await this.db.raw(
        `with rotated as (
           update sessions set refresh_token_hash = ?, previous_refresh_token_hash = ?, last_refreshed_at = ?, idle_expires_at = ?
           where id = ? returning id
         )
         insert into refresh_tokens (token_hash, session_id, issued_at) select ?, id, ? from rotated`,
        [
          session.refreshTokenHash.bytes,
          session.previousRefreshTokenHash?.bytes ?? null,
          session.lastRefreshedAt,
          session.idleExpiresAt,
          session.id.value,
          session.refreshTokenHash.bytes,
          session.lastRefreshedAt,
        ],
      );
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

  listLiveOfUser(userId: UserId, now: Date): Promise<Session[]> {
    return withDbErrors(async () => {
      // sessions_user_live_idx: the user's unrevoked sessions; the expiry is a filter on few rows.
      const rows = (await this.db('sessions')
        .where({ user_id: userId.value })
        .whereNull('revoked_at')
        .andWhere('idle_expires_at', '>', now)
        .andWhere('expires_at', '>', now)
        .orderBy([{ column: 'created_at' }, { column: 'id' }])) as SessionRow[];
      return rows.map((row) => sessionMapper.toDomain(row));
    });
  }

  eraseClientAddresses(userId: UserId): Promise<void> {
    return withDbErrors(async () => {
      await this.db('sessions').where({ user_id: userId.value }).update({ client_address: '' });
    });
  }
}
