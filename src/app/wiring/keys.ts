import type { Logger } from 'pino';
import type { Clock } from '../../application/ports/clock.port.js';
import type { Config } from '../../infrastructure/config/load-config.js';
import type { Database } from '../../infrastructure/db/database.js';
import { loadDevKeyEncryptionKey } from '../../infrastructure/tokens/dev-key-encryption-key.js';
import { KeyEncryption } from '../../infrastructure/tokens/key-encryption.js';
import { KeyManager } from '../../infrastructure/tokens/key-manager.js';
import { KeyRing } from '../../infrastructure/tokens/key-ring.js';
import { SigningKeyStore } from '../../infrastructure/tokens/signing-key.store.js';

/** Private keys at rest are encrypted with KEY_ENCRYPTION_KEY, or in development a generated one. */
const keyEncryption = (config: Config) =>
  new KeyEncryption(config.KEY_ENCRYPTION_KEY !== undefined ? Buffer.from(config.KEY_ENCRYPTION_KEY, 'base64') : loadDevKeyEncryptionKey(config.DATA_DIR));

/** The key manager (creates and rotates keys) over the store. */
export function keyManager(config: Config, store: SigningKeyStore, encryption = keyEncryption(config)): KeyManager {
  return new KeyManager(store, encryption, {
    algorithm: config.TOKEN_ALGORITHMS[0] ?? 'ES256',
    publishLeadSeconds: config.KEY_PUBLISH_LEAD_SECONDS,
    tokenTtlSeconds: config.TOKEN_TTL_SECONDS,
    clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
    rotationDays: config.KEY_ROTATION_DAYS,
  });
}

/** The replica's view of the signing keys, refreshed from the database. */
export function keyRing(config: Config, db: Database, logger: Logger, clock: Clock): KeyRing {
  const store = new SigningKeyStore(db.knex);
  const encryption = keyEncryption(config);
  return new KeyRing(store, encryption, keyManager(config, store, encryption), { refreshSeconds: config.KEY_REFRESH_SECONDS, algorithms: config.TOKEN_ALGORITHMS, logger, clock });
}
