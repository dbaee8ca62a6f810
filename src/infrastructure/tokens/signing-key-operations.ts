import type { RotationOutcome, SigningKeyOperations, SigningKeySummary } from '../../application/ports/signing-key-operations.port.js';
import { keyState } from './key-lifecycle.js';
import { RotationPendingError, type KeyManager } from './key-manager.js';
import type { SigningKeyStore, StoredSigningKey } from './signing-key.store.js';

const summary = (key: StoredSigningKey, now: Date): SigningKeySummary => ({
  kid: key.kid,
  alg: key.alg,
  state: keyState(key, now),
  createdAt: key.createdAt,
  activatesAt: key.activatesAt,
  retiresAt: key.retiresAt,
  removesAt: key.removesAt,
});

/** Listing and rotation for operators; never a private key, only what a key's life shows. */
export class SigningKeyAdministration implements SigningKeyOperations {
  constructor(
    private readonly store: SigningKeyStore,
    private readonly manager: () => KeyManager,
  ) {}

  async list(now: Date): Promise<readonly SigningKeySummary[]> {
    return (await this.store.list()).map((key) => summary(key, now));
  }

  async rotate(now: Date): Promise<RotationOutcome> {
    try {
      return { rotated: summary(await this.manager().rotate(now), now) };
    } catch (error) {
      if (error instanceof RotationPendingError) return { refused: error.message };
      throw error;
    }
  }
}
