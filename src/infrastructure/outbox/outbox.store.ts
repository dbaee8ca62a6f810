import type { Knex } from 'knex';
import { withDbErrors } from '../db/db-errors.js';
import type { OutboxStats } from '../../application/ports/outbox-operations.port.js';

/** An outbox row claimed by a relay for publication. */
export interface ClaimedEvent {
  readonly id: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly aggregateId: string;
  readonly payload: Uint8Array;
  readonly headers: Record<string, string>;
  readonly createdAt: Date;
  readonly attempts: number;
}

export interface ClaimOptions {
  readonly relayId: string;
  readonly limit: number;
  readonly leaseSeconds: number;
  /** `outbox flush` tries rows that are waiting out a backoff too. */
  readonly ignoreBackoff?: boolean;
  /** Rows this caller already tried (a flush tries each once). */
  readonly excludeIds?: readonly string[];
}

export interface RowFailure {
  readonly id: string;
  readonly error: string;
  readonly nextAttemptAt: Date;
  readonly dead: boolean;
}


interface ClaimedRow {
  id: string | number;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  payload: Uint8Array;
  headers: Record<string, string> | string;
  created_at: Date;
  attempts: number;
}

const toClaimed = (row: ClaimedRow): ClaimedEvent => ({
  // pg returns bigint as a string and PGlite as a number: one type from here on.
  id: String(row.id),
  eventId: row.event_id,
  eventType: row.event_type,
  aggregateId: row.aggregate_id,
  payload: new Uint8Array(row.payload),
  headers: typeof row.headers === 'string' ? (JSON.parse(row.headers) as Record<string, string>) : row.headers,
  createdAt: new Date(row.created_at),
  attempts: Number(row.attempts),
});

/** The relay's SQL over the outbox table. */
export class OutboxStore {
  constructor(private readonly knex: Knex) {}

  /**
   * Leases up to `limit` publishable rows in id order. SKIP LOCKED keeps concurrent relays
   * apart; the lease lets another relay take the rows over if this one dies. Only the oldest
   * unpublished row of each aggregate is eligible, so an aggregate's events go out one at a
   * time in commit order (writes to one aggregate lock its row, so their ids are in commit
   * order too). Nothing tracks a high-water mark, so a transaction that commits after rows
   * with higher ids were published is still found.
   */
  claim(options: ClaimOptions): Promise<ClaimedEvent[]> {
    return withDbErrors(async () => {
      const exclude = options.excludeIds ?? [];
      const result = await this.knex.raw<{ rows: ClaimedRow[] }>(
        `with candidates as (
           select o.id from outbox o
           where o.published_at is null and o.dead_at is null
             ${options.ignoreBackoff === true ? '' : 'and o.next_attempt_at <= now()'}
             and (o.locked_until is null or o.locked_until < now())
             ${exclude.length > 0 ? 'and o.id <> all(?::bigint[])' : ''}
             and not exists (
               select 1 from outbox p
               where p.aggregate_id = o.aggregate_id and p.published_at is null and p.id < o.id)
           order by o.id
           limit ?
           for update skip locked)
         update outbox set locked_until = now() + make_interval(secs => ?), locked_by = ?
         from candidates where outbox.id = candidates.id
         returning outbox.id, outbox.event_id, outbox.event_type, outbox.aggregate_id, outbox.payload,
                   outbox.headers, outbox.created_at, outbox.attempts`,
        [...(exclude.length > 0 ? [[...exclude]] : []), options.limit, options.leaseSeconds, options.relayId],
      );
      return result.rows.map(toClaimed).sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
    });
  }

  markPublished(ids: readonly string[]): Promise<void> {
    return withDbErrors(async () => {
      if (ids.length === 0) return;
      await this.knex('outbox')
        .whereIn('id', ids)
        .whereNull('published_at')
        .update({ published_at: this.knex.fn.now(), locked_until: null, locked_by: null, last_error: null });
    });
  }

  /** Counts a failed attempt on each row and schedules its retry, or dead-letters it. */
  markFailed(failures: readonly RowFailure[]): Promise<void> {
    return withDbErrors(() =>
      this.knex.transaction(async (trx) => {
        for (const failure of failures) {
          await trx('outbox')
            .where({ id: failure.id })
            .whereNull('published_at')
            .update({
              attempts: trx.raw('attempts + 1'),
              last_error: failure.error.slice(0, 2_000),
              next_attempt_at: failure.nextAttemptAt,
              dead_at: failure.dead ? trx.fn.now() : null,
              locked_until: null,
              locked_by: null,
            });
        }
      }),
    );
  }

  /**
   * Extends the lease of rows this relay still holds and has not published (the heartbeat of
   * a live relay); rows settled or taken over meanwhile are left alone. Resolves with how many.
   */
  renew(relayId: string, ids: readonly string[], leaseSeconds: number): Promise<number> {
    return withDbErrors(async () => {
      if (ids.length === 0) return 0;
      return this.knex('outbox')
        .whereIn('id', ids)
        .where({ locked_by: relayId })
        .whereNull('published_at')
        .update({ locked_until: this.knex.raw('now() + make_interval(secs => ?)', [leaseSeconds]) });
    });
  }

  /** Gives rows back without counting an attempt (NATS unreachable, or this relay stopping). */
  release(relayId: string, ids: readonly string[], error?: string): Promise<void> {
    return withDbErrors(async () => {
      if (ids.length === 0) return;
      await this.knex('outbox')
        .whereIn('id', ids)
        .where({ locked_by: relayId })
        .whereNull('published_at')
        .update({ locked_until: null, locked_by: null, ...(error !== undefined && { last_error: error.slice(0, 2_000) }) });
    });
  }

  stats(): Promise<OutboxStats> {
    return withDbErrors(async () => {
      const row = (await this.knex('outbox')
        .whereNull('published_at')
        .select(
          this.knex.raw('count(*) filter (where dead_at is null) as pending'),
          this.knex.raw('count(*) filter (where dead_at is not null) as dead'),
          this.knex.raw('coalesce(extract(epoch from now() - min(created_at) filter (where dead_at is null)), 0) as oldest'),
        )
        .first()) as { pending: string | number; dead: string | number; oldest: string | number };
      return { pending: Number(row.pending), dead: Number(row.dead), oldestPendingAgeSeconds: Number(row.oldest) };
    });
  }

  /** Puts dead-lettered rows back in line with a fresh attempt count. */
  retryDead(): Promise<number> {
    return withDbErrors(() =>
      this.knex('outbox')
        .whereNotNull('dead_at')
        .whereNull('published_at')
        .update({ dead_at: null, attempts: 0, next_attempt_at: this.knex.fn.now() }),
    );
  }

  /** Deletes up to `limit` rows published before `cutoff`; small batches keep locks short. */
  deletePublishedBefore(cutoff: Date, limit: number): Promise<number> {
    return withDbErrors(() =>
      this.knex('outbox')
        .whereIn('id', this.knex('outbox').select('id').where('published_at', '<', cutoff).limit(limit))
        .delete(),
    );
  }
}
