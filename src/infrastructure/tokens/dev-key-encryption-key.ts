import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';

/**
 * Outside production, a missing KEY_ENCRYPTION_KEY is replaced by one generated once and
 * kept in DATA_DIR, so private keys stay readable across restarts of a development setup.
 */
export function loadDevKeyEncryptionKey(dataDir: string, logger: Logger): Buffer {
  const dir = resolve(dataDir);
  const path = join(dir, 'key-encryption.key');
  try {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length === 32) {
      logger.warn({ path }, 'KEY_ENCRYPTION_KEY is not set: using the development key in DATA_DIR (never do this in production)');
      return key;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, key.toString('base64'), { mode: 0o600, flag: 'wx' });
  logger.warn({ path }, 'KEY_ENCRYPTION_KEY is not set: generated a development key in DATA_DIR (never do this in production)');
  return key;
}
