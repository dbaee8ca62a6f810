import type { Logger } from 'pino';
import type { Config } from '../infrastructure/config/load-config.js';
import { openDatabase, type Database } from '../infrastructure/db/database.js';
import { ensureSchema } from '../infrastructure/db/migrator.js';
import { createLogger } from '../infrastructure/observability/logger.js';
import { warnDevelopmentFallbacks } from './wiring/dev-fallbacks.js';

export interface DatabaseWork {
  /** The command reads or writes signing keys (and so needs the key encryption key). */
  readonly usesKeys?: boolean;
  /** The command manages the schema itself: no migrations on start, none required. */
  readonly migrating?: boolean;
}

/** Runs a one-shot command's `work` with a database and a logger on stderr, closing the database afterwards. */
export async function withDatabase<T>(config: Config, work: (db: Database, logger: Logger) => Promise<T>, options: DatabaseWork = {}): Promise<T> {
  const logger = createLogger({ level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV, destination: process.stderr });
  warnDevelopmentFallbacks(config, logger, options.usesKeys === true);
  const db = openDatabase(config, logger);
  try {
    if (options.migrating !== true) await ensureSchema(db.knex, config.migrateOnStart);
    return await work(db, logger);
  } finally {
    await db.close();
  }
}
