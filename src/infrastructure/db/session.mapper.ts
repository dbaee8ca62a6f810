import { Session } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import { RefreshTokenDigest } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import { SessionId } from '../../domain/identity/value-objects/session-id.value-object.js';
import { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

/** A row of the sessions table as pg returns it. */
export interface SessionRow {
  id: string;
  user_id: string;
  refresh_token_hash: Buffer;
  previous_refresh_token_hash: Buffer | null;
  created_at: Date;
  last_refreshed_at: Date;
  idle_expires_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  client_address: string;
}

const reasons = new Set<string>(Object.values(SessionRevokedReason));
const date = (value: Date | null): Date | undefined => (value === null ? undefined : new Date(value));

export const sessionMapper = {
  toPersistence(session: Session): SessionRow {
    return {
      id: session.id.value,
      user_id: session.userId.value,
      refresh_token_hash: session.refreshTokenHash.bytes,
      previous_refresh_token_hash: session.previousRefreshTokenHash?.bytes ?? null,
      created_at: session.createdAt,
      last_refreshed_at: session.lastRefreshedAt,
      idle_expires_at: session.idleExpiresAt,
      expires_at: session.expiresAt,
      revoked_at: session.revokedAt ?? null,
      revoked_reason: session.revokedReason ?? null,
      client_address: session.clientAddress,
    };
  },

  toDomain(row: SessionRow): Session {
    if (row.revoked_reason !== null && !reasons.has(row.revoked_reason)) throw new Error(`sessions.revoked_reason has an unknown value for session ${row.id}`);
    return Session.restore({
      id: SessionId.fromTrusted(row.id),
      userId: UserId.fromTrusted(row.user_id),
      refreshTokenHash: RefreshTokenDigest.fromTrusted(row.refresh_token_hash),
      previousRefreshTokenHash: row.previous_refresh_token_hash === null ? undefined : RefreshTokenDigest.fromTrusted(row.previous_refresh_token_hash),
      createdAt: new Date(row.created_at),
      lastRefreshedAt: new Date(row.last_refreshed_at),
      idleExpiresAt: new Date(row.idle_expires_at),
      expiresAt: new Date(row.expires_at),
      revokedAt: date(row.revoked_at),
      revokedReason: (row.revoked_reason ?? undefined) as SessionRevokedReason | undefined,
      clientAddress: row.client_address,
    });
  },
};
