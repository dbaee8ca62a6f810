import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Outside production, a missing KEY_ENCRYPTION_KEY is replaced by one generated once and
 * kept in DATA_DIR, so private keys stay readable across restarts of a development setup.
 * The caller warns about it (once, with the other development fallbacks).
 */
export function loadDevKeyEncryptionKey(dataDir: string): Buffer {
  const path = join(resolve(dataDir), 'key-encryption.key');
  try {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length === 32) return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  mkdirSync(resolve(dataDir), { recursive: true });
  writeFileSync(path, key.toString('base64'), { mode: 0o600, flag: 'wx' });
  return key;
}
