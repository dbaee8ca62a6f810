import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import type { Knex } from 'knex';
import { keyState, planRotation, signingKeyAt } from './key-lifecycle.js';
import type { KeyEncryption } from './key-encryption.js';
import type { SigningAlgorithm, SigningKeyStore, StoredSigningKey } from './signing-key.store.js';
import { CodedError } from '../../domain/shared/coded-error.js';

export interface KeyManagerOptions {
  readonly algorithm: SigningAlgorithm;
  readonly publishLeadSeconds: number;
  readonly tokenTtlSeconds: number;
  readonly clockSkewSeconds: number;
  /** Rotate automatically once the active key is this old; 0 = only by `identity keys rotate`. */
  readonly rotationDays: number;
}

/** A rotation was asked for while an earlier one is still waiting for its activation. */
export class RotationPendingError extends CodedError {
  readonly code = 'KEYS.ROTATION_PENDING';

  constructor(kid: string, activatesAt: Date) {
    super(`key ${kid} is already pending and becomes active at ${activatesAt.toISOString()}`);
  }
}

/** Creates and rotates signing keys; each change runs under one advisory lock for all replicas. */
export class KeyManager {
  constructor(
    private readonly store: SigningKeyStore,
    private readonly encryption: KeyEncryption,
    private readonly options: KeyManagerOptions,
  ) {}

  /** On first start there is no key: create one that signs at once (no token can depend on an older one). */
  async ensureSigningKey(now: Date): Promise<void> {
    await this.store.withAdminLock(async (trx) => {
      const keys = await this.store.list(trx);
      if (signingKeyAt(keys, now) !== undefined || keys.some((key) => keyState(key, now) === 'pending')) return;
      await this.store.insert(trx, await this.generate(now, now));
    });
  }

  /** Publishes a new key now; it signs after the publish lead time, when the current key retires. */
  rotate(now: Date): Promise<StoredSigningKey> {
    return this.store.withAdminLock((trx) => this.rotateLocked(trx, now));
  }

  /** Rotates when the active key is older than KEY_ROTATION_DAYS; a no-op otherwise. */
  async rotateIfDue(now: Date): Promise<StoredSigningKey | undefined> {
    const days = this.options.rotationDays;
    if (days === 0) return undefined;
    return this.store.withAdminLock(async (trx) => {
      const keys = await this.store.list(trx);
      const active = signingKeyAt(keys, now);
      const due = active !== undefined && now.getTime() - active.activatesAt.getTime() >= days * 86_400_000;
      if (!due || keys.some((key) => keyState(key, now) === 'pending')) return undefined;
      return this.rotateLocked(trx, now);
    });
  }

  private async rotateLocked(trx: Knex.Transaction, now: Date): Promise<StoredSigningKey> {
    const keys = await this.store.list(trx);
    const pending = keys.find((key) => keyState(key, now) === 'pending');
    if (pending !== undefined) throw new RotationPendingError(pending.kid, pending.activatesAt);
    const { publishLeadSeconds, tokenTtlSeconds, clockSkewSeconds } = this.options;
    const plan = planRotation(now, publishLeadSeconds, tokenTtlSeconds, clockSkewSeconds);
    const next = await this.generate(now, plan.activatesAt);
    const current = signingKeyAt(keys, now);
    if (current !== undefined) await this.store.retire(trx, current.kid, plan.retiresAt, plan.removesAt);
    await this.store.insert(trx, next);
    return next;
  }

  private async generate(now: Date, activatesAt: Date): Promise<StoredSigningKey> {
    const alg = this.options.algorithm;
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
    const privateJwk = Buffer.from(JSON.stringify(await exportJWK(privateKey)));
    return {
      kid,
      alg,
      publicJwk,
      privateKeyEncrypted: this.encryption.encrypt(kid, privateJwk),
      createdAt: now,
      activatesAt,
      retiresAt: null,
      removesAt: null,
    };
  }
}
