import { join, resolve } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import type { Logger } from 'pino';
import type { Config } from '../config/load-config.js';
import { lockDataDir } from './data-dir-lock.js';

export interface Database {
  readonly knex: Knex;
  close(): Promise<void>;
}

type DatabaseConfig = Pick<Config, 'DATABASE_URL' | 'DATA_DIR' | 'DB_POOL_MAX'>;

/**
 * PostgreSQL when DATABASE_URL is set, otherwise PGlite under DATA_DIR (development only).
 * `statementTimeoutMs` bounds every statement (0: none, for migrations and other CLI work).
 */
export function openDatabase(config: DatabaseConfig, logger: Logger, statementTimeoutMs = 0): Database {
  if (config.DATABASE_URL !== undefined) {
    const knex = knexFactory({
      client: 'pg',
      connection: {
        connectionString: config.DATABASE_URL,
        application_name: 'identity-service',
        // A stuck statement or a half-open connection must not hold a pooled connection for ever.
        ...(statementTimeoutMs > 0 && { statement_timeout: statementTimeoutMs }),
        keepAlive: true,
      },
      pool: { min: 0, max: config.DB_POOL_MAX, acquireTimeoutMillis: 10_000 },
      acquireConnectionTimeout: 10_000,
      // Knex would put the SQL with its bound values (hashes, emails) into error messages,
      // which end up in logs.
      compileSqlOnError: false,
      log: knexLog(logger),
    });
    return { knex, close: () => knex.destroy() };
  }
  const dir = resolve(config.DATA_DIR);
  const unlock = lockDataDir(dir);
  const knex = knexFactory({ client: ClientPgLite, connection: { filename: join(dir, 'pgdata') }, compileSqlOnError: false, log: knexLog(logger) });
  return {
    knex,
    close: async () => {
      try {
        await knex.destroy();
      } finally {
        unlock();
      }
    },
  };
}

/**
 * Knex's own warnings (a failed connection attempt, with its stack) go to the service's log,
 * not to console.log: stdout carries JSON log lines, and a CLI command's JSON result.
 */
function knexLog(logger: Logger): Knex.Logger {
  const text = (message: unknown) => (typeof message === 'string' ? message : JSON.stringify(message));
  return {
    warn: (message: unknown) => logger.warn({ component: 'knex' }, text(message)),
    error: (message: unknown) => logger.error({ component: 'knex' }, text(message)),
    debug: (message: unknown) => logger.debug({ component: 'knex' }, text(message)),
    deprecate: (method: string, alternative: string) => logger.warn({ component: 'knex' }, `${method} is deprecated, use ${alternative}`),
  };
}

interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
}

/** Knex keeps its tarn pool on the client; it exists once the first query ran. */
export function poolGauges(knex: Knex) {
  const pool = () => (knex.client as { pool?: TarnPool }).pool;
  return {
    inUse: () => pool()?.numUsed() ?? 0,
    waiting: () => pool()?.numPendingAcquires() ?? 0,
  };
}
