import type { Knex } from 'knex';
import type { AttemptKeys, LoginThrottle } from '../../application/ports/login-throttle.port.js';
import { TooManyAttemptsError } from '../../domain/identity/identity.errors.js';
import { throttleDelaySeconds } from '../../domain/identity/login-throttle.policy.js';
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
 * counts. Each change locks the counters it touches and reads the database clock, the one
 * clock all replicas share.
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
      for (const counter of counters) {
        const windowOver = now.getTime() - counter.last_failure_at.getTime() > this.options.windowSeconds * 1000;
        await this.write(trx, counter.key, windowOver ? 1 : counter.failures + 1, now);
      }
    });
  }

  succeeded(keys: AttemptKeys): Promise<void> {
    return this.locked([emailKey(keys), clientKey(keys)], async (trx, counters) => {
      await trx('login_attempts').where({ key: emailKey(keys) }).delete();
      await this.takeBack(trx, counters.filter((c) => c.key === clientKey(keys)));
    });
  }

  abandoned(keys: AttemptKeys): Promise<void> {
    return this.locked([emailKey(keys), clientKey(keys)], (trx, counters) => this.takeBack(trx, counters));
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

  /** One attempt less; a delay stays only while the count still calls for one. */
  private async takeBack(trx: Knex.Transaction, counters: readonly Counter[]): Promise<void> {
    for (const counter of counters) {
      const failures = Math.max(0, counter.failures - 1);
      const blocked = throttleDelaySeconds(failures, this.freeAttempts(counter.key), this.options.maxDelaySeconds) > 0;
      await trx('login_attempts')
        .where({ key: counter.key })
        .update({ failures, ...(!blocked && { blocked_until: null }) });
    }
  }

  private async write(trx: Knex.Transaction, key: string, failures: number, now: Date): Promise<void> {
    const delay = throttleDelaySeconds(failures, this.freeAttempts(key), this.options.maxDelaySeconds);
    await trx('login_attempts')
      .where({ key })
      .update({ failures, last_failure_at: now, blocked_until: delay > 0 ? new Date(now.getTime() + delay * 1000) : null });
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
