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

// PostgreSQL text cannot hold NUL; an address with one belongs to no user, so a stand-in will do.
const emailKey = (keys: AttemptKeys) => `email:${keys.emailKey.replaceAll('\0', '\uFFFD')}`;
const clientKey = (keys: AttemptKeys) => `client:${keys.clientAddress}`;

/**
 * Failed-login counters in PostgreSQL, so every replica (and a restarted one) sees the same
 * counts. Times come from the database clock, the one clock all replicas share.
 */
export class PgLoginThrottle implements LoginThrottle {
  constructor(
    private readonly knex: Knex,
    private readonly options: PgLoginThrottleOptions,
  ) {}

  assertAllowed(keys: AttemptKeys): Promise<void> {
    return withDbErrors(async () => {
      const row = (await this.knex('login_attempts')
        .whereIn('key', [emailKey(keys), clientKey(keys)])
        .where('blocked_until', '>', this.knex.fn.now())
        .max({ wait: this.knex.raw('extract(epoch from blocked_until - now())') })
        .first()) as { wait: string | number | null } | undefined;
      if (row?.wait == null) return;
      this.options.metrics.loginThrottled.inc();
      throw new TooManyAttemptsError(Math.max(1, Math.ceil(Number(row.wait))));
    });
  }

  recordFailure(keys: AttemptKeys): Promise<void> {
    return withDbErrors(async () => {
      await this.countFailure(emailKey(keys), this.options.freeAttempts);
      await this.countFailure(clientKey(keys), this.options.clientFreeAttempts);
    });
  }

  recordSuccess(keys: AttemptKeys): Promise<void> {
    return withDbErrors(async () => {
      await this.knex('login_attempts').where({ key: emailKey(keys) }).delete();
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

  private async countFailure(key: string, freeAttempts: number): Promise<void> {
    const { windowSeconds, maxDelaySeconds } = this.options;
    // A count whose last failure is older than the window starts over.
    const result = await this.knex.raw<{ rows: { failures: number }[] }>(
      `insert into login_attempts (key, failures, last_failure_at) values (?, 1, now())
       on conflict (key) do update set
         failures = case when login_attempts.last_failure_at < now() - make_interval(secs => ?) then 1
                         else login_attempts.failures + 1 end,
         last_failure_at = now()
       returning failures`,
      [key, windowSeconds],
    );
    const failures = Number(result.rows[0]?.failures ?? 0);
    const delay = throttleDelaySeconds(failures, freeAttempts, maxDelaySeconds);
    if (delay === 0) return;
    await this.knex('login_attempts')
      .where({ key })
      .update({ blocked_until: this.knex.raw('now() + make_interval(secs => ?)', [delay]) });
  }
}

/** LOGIN_THROTTLE=off: every attempt is allowed and nothing is counted. */
export const noLoginThrottle: LoginThrottle = {
  assertAllowed: () => Promise.resolve(),
  recordFailure: () => Promise.resolve(),
  recordSuccess: () => Promise.resolve(),
};
