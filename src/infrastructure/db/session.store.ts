import type { Knex } from 'knex';
import { withDbErrors } from './db-errors.js';

/** Housekeeping of the sessions table, outside any use case (like the outbox's retention). */
export class SessionStore {
  constructor(private readonly knex: Knex) {}

  /**
   * Deletes up to `limit` sessions that ended (revoked, idle or past their absolute end)
   * before `cutoff`, with their refresh tokens; small batches keep locks short. A revoked
   * session must outlive the access tokens it issued, so that a replica starting late still
   * learns of it: the caller's cutoff keeps that margin.
   */
  deleteEndedBefore(cutoff: Date, limit: number): Promise<number> {
    return withDbErrors(() =>
      this.knex('sessions')
        .whereIn('id', this.knex('sessions').select('id').whereRaw('coalesce(revoked_at, least(idle_expires_at, expires_at)) < ?', [cutoff]).limit(limit))
        .delete(),
    );
  }
}
