import type { Knex } from 'knex';
import type { AttemptKeys, LoginThrottle } from '../../application/ports/login-throttle.port.js';
import { TooManyAttemptsError } from '../../domain/identity/identity.errors.js';
import { firstDelayedFailure, throttleDelaySeconds } from '../../domain/identity/login-throttle.policy.js';
import { withDbErrors } from '../db/db-errors.js';
import type { Metrics } from '../observability/metrics.js';

export interface PgLoginThrottleOptions {
  readonly freeAttempts: number;
  readonly clientFreeAttempts: number;
  readonly windowSeconds: number;
  readonly maxDelaySeconds: number;
  readonly metrics: Pick<Metrics, 'loginThrottled'>;
}

interface Counter {
  readonly key: string;
  readonly failures: number;
  readonly last_failure_at: Date;
  readonly blocked_until: Date | null;
}

// PostgreSQL text cannot hold NUL; an address with one belongs to no user, so a stand-in will do.
const emailKey = (keys: AttemptKeys) => `email:${keys.emailKey.replaceAll('\0', '\uFFFD')}`;
const clientKey = (keys: AttemptKeys) => `client:${keys.clientAddress}`;

/**
 * Failed-login counters in PostgreSQL, so every replica (and a restarted one) sees the same
 * counts. begin() locks both counters and reads the database clock, the one clock all replicas
 * share; taking an attempt back changes one counter per statement.
 */
export class PgLoginThrottle implements LoginThrottle {
  constructor(
    private readonly knex: Knex,
    private readonly options: PgLoginThrottleOptions,
  ) {}

  begin(keys: AttemptKeys): Promise<void> {
    return this.locked([emailKey(keys), clientKey(keys)], async (trx, counters, now) => {
      const waitMs = Math.max(0, ...counters.map((c) => (c.blocked_until?.getTime() ?? 0) - now.getTime()));
      if (waitMs > 0) {
        this.options.metrics.loginThrottled.inc();
        throw new TooManyAttemptsError(Math.ceil(waitMs / 1000));
      }
      const windowMs = this.options.windowSeconds * 1000;
      await this.write(
        trx,
        counters.map((c) => ({ key: c.key, failures: now.getTime() - c.last_failure_at.getTime() > windowMs ? 1 : c.failures + 1 })),
        now,
      );
    });
  }

  /**
   * A statement per counter, each its own transaction: nothing here decides on both counters
   * at once (begin() does, under its locks), and a statement locks only the row it changes,
   * so no lock order is needed. Two round trips instead of a locking transaction's six.
   */
  succeeded(keys: AttemptKeys): Promise<void> {
    return withDbErrors(async () => {
      await this.knex('login_attempts').where({ key: emailKey(keys) }).delete();
      await this.takeBack(clientKey(keys));
    });
  }

  /** As succeeded(), one statement per counter. */
  abandoned(keys: AttemptKeys): Promise<void> {
    return withDbErrors(async () => {
      await this.takeBack(emailKey(keys));
      await this.takeBack(clientKey(keys));
    });
  }

  /** Deletes counters whose window has passed and whose delay is over. */
  cleanup(): Promise<number> {
    return withDbErrors(() =>
      this.knex('login_attempts')
        .whereRaw('last_failure_at < now() - make_interval(secs => ?)', [this.options.windowSeconds])
        .andWhereRaw('(blocked_until is null or blocked_until < now())')
        .delete(),
    );
  }

  /**
   * One attempt less, in one statement on the row as it is when locked; a delay stays only
   * while the count still calls for one. A missing counter stays missing (it counts zero).
   */
  private async takeBack(key: string): Promise<void> {
    await this.knex('login_attempts')
      .where({ key })
      .update({
        failures: this.knex.raw('greatest(failures - 1, 0)'),
        blocked_until: this.knex.raw('case when failures - 1 >= ? then blocked_until end', [firstDelayedFailure(this.freeAttempts(key))]),
      });
  }

  /** The new counts of the locked counters, in one statement. */
  private async write(trx: Knex.Transaction, counts: readonly { readonly key: string; readonly failures: number }[], now: Date): Promise<void> {
    const rows = counts.map(({ key, failures }) => {
      const delay = throttleDelaySeconds(failures, this.freeAttempts(key), this.options.maxDelaySeconds);
      return [key, failures, now, delay > 0 ? new Date(now.getTime() + delay * 1000) : null];
    });
    await trx.raw(
      `update login_attempts as a set failures = v.failures, last_failure_at = v.at, blocked_until = v.blocked
       from (values ${rows.map(() => '(?::text, ?::int, ?::timestamptz, ?::timestamptz)').join(', ')}) as v (key, failures, at, blocked)
       where a.key = v.key`,
      rows.flat(),
    );
  }

  private freeAttempts(key: string): number {
    return key.startsWith('client:') ? this.options.clientFreeAttempts : this.options.freeAttempts;
  }

  /**
   * Runs `work` on the counters of `keys` (created at zero when missing), locked in key order
   * so that two attempts on the same keys never deadlock, with the database's time.
   */
  private locked(keys: readonly string[], work: (trx: Knex.Transaction, counters: Counter[], now: Date) => Promise<void>): Promise<void> {
    const sorted = [...keys].sort();
    return withDbErrors(() =>
      this.knex.transaction(async (trx) => {
        await trx.raw(
          `insert into login_attempts (key, failures, last_failure_at)
           select k, 0, now() from unnest(?::text[]) as k on conflict (key) do nothing`,
          [sorted],
        );
        const rows: (Counter & { now: Date })[] = await trx('login_attempts')
          .whereIn('key', sorted)
          .orderBy('key')
          .forUpdate()
          .select('*', trx.raw('now() as now'));
        const now = new Date(rows[0]?.now ?? Date.now());
        await work(
          trx,
          rows.map(({ key, failures, last_failure_at, blocked_until }) => ({
            key,
            failures: Number(failures),
            last_failure_at: new Date(last_failure_at),
            blocked_until: blocked_until === null ? null : new Date(blocked_until),
          })),
          now,
        );
      }),
    );
  }
}

/** LOGIN_THROTTLE=off: every attempt is allowed and nothing is counted. */
export const noLoginThrottle: LoginThrottle = {
  begin: () => Promise.resolve(),
  succeeded: () => Promise.resolve(),
  abandoned: () => Promise.resolve(),
};
