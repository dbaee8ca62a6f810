import type { Knex } from 'knex';
import type { Config } from '../../infrastructure/config/load-config.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { PgLoginThrottle } from '../../infrastructure/throttle/pg-login-throttle.js';

/** The login throttle shared by every replica through PostgreSQL; undefined when LOGIN_THROTTLE is off. */
export function loginThrottle(config: Config, knex: Knex, metrics: Metrics): PgLoginThrottle | undefined {
  if (!config.LOGIN_THROTTLE) return undefined;
  return new PgLoginThrottle(knex, {
    freeAttempts: config.LOGIN_FREE_ATTEMPTS,
    clientFreeAttempts: config.LOGIN_CLIENT_FREE_ATTEMPTS,
    windowSeconds: config.LOGIN_WINDOW_SECONDS,
    maxDelaySeconds: config.LOGIN_MAX_DELAY_SECONDS,
    metrics,
  });
}
