import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../infrastructure/config/load-config.js';

/**
 * One warning, at start, for every development fallback in use: the embedded database and
 * a generated key encryption key, both kept in DATA_DIR.
 */
export function warnDevelopmentFallbacks(config: Config, logger: Logger, usesKeys: boolean): void {
  const fallbacks = [
    ...(config.embeddedDatabase ? ['the embedded PGlite database (DATABASE_URL is not set)'] : []),
    ...(usesKeys && config.KEY_ENCRYPTION_KEY === undefined ? ['a generated key encryption key (KEY_ENCRYPTION_KEY is not set)'] : []),
  ];
  if (fallbacks.length === 0) return;
  const dataDir = resolve(config.DATA_DIR);
  logger.warn({ dataDir, fallbacks }, `for development only: ${fallbacks.join(' and ')}, kept in ${dataDir}; never run a shared deployment this way`);
}
