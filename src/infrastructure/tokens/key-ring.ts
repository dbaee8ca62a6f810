import { createPublicKey, type KeyObject } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { Clock } from '../../application/ports/clock.port.js';
import { isPublished, keyState, signingKeyAt, type KeyTimes } from './key-lifecycle.js';
import type { KeyEncryption } from './key-encryption.js';
import type { KeyManager } from './key-manager.js';
import type { SigningAlgorithm, SigningKeyStore, StoredSigningKey } from './signing-key.store.js';

export interface LoadedKey extends KeyTimes {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** For node:crypto verification on the event loop, without a hop to libuv's thread pool. */
  readonly publicKey: KeyObject;
  /** The JWKS entry: public parts only. */
  readonly jwk: JWK;
  /** Present for keys that sign now or will: pending and active. */
  readonly privateKey?: CryptoKey;
}

export interface KeyRingOptions {
  readonly refreshSeconds: number;
  /** TOKEN_ALGORITHMS: what this replica verifies, so the only algorithms it may sign with. */
  readonly algorithms: readonly SigningAlgorithm[];
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * This replica's copy of the signing_keys table, read at start and every KEY_REFRESH_SECONDS.
 * Every replica reads the same rows and derives states from the same times, so all of them
 * sign with the same key and publish the same JWKS.
 */
export class KeyRing {
  private keys: ReadonlyMap<string, LoadedKey> = new Map();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly encryption: KeyEncryption,
    private readonly manager: KeyManager,
    private readonly options: KeyRingOptions,
  ) {}

  /** Loads the keys, creating the first one on a new database, and keeps them fresh. */
  async start(): Promise<void> {
    await this.maintainAndReload();
    this.assertSignable();
    this.timer = setInterval(() => {
      this.maintainAndReload().catch((error: unknown) =>
        this.options.logger.error({ err: error }, 'signing key refresh failed; keeping the keys loaded before'),
      );
    }, this.options.refreshSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Each cycle writes first (the key life's due steps, under the managers' shared lock), then reads the keys. */
  private async maintainAndReload(): Promise<void> {
    const now = this.options.clock.now();
    await this.maintain(now);
    await this.reload(now);
  }

  /**
   * On a new database, and on one whose keys were lost (say, migrations rolled back and
   * applied again under a running service), the first replica to get here makes a key;
   * whichever replica comes first rotates a key that is due and deletes removed ones.
   */
  private async maintain(now: Date): Promise<void> {
    await this.manager.ensureSigningKey(now);
    const rotated = await this.manager.rotateIfDue(now);
    if (rotated !== undefined) this.options.logger.info({ kid: rotated.kid, activatesAt: rotated.activatesAt }, 'signing key rotated automatically');
    await this.store.deleteRemoved(now);
  }

  private async reload(now: Date): Promise<void> {
    const rows = await this.store.list();
    const next = new Map<string, LoadedKey>();
    for (const row of rows) next.set(row.kid, await this.load(row, now));
    this.keys = next;
  }

  /**
   * A replica whose TOKEN_ALGORITHMS leaves out the alg of a key that signs now or will would
   * refuse every token it issues; it must not start (e.g. ES256 only on a database of EdDSA keys).
   */
  private assertSignable(): void {
    const now = this.options.clock.now();
    const { algorithms } = this.options;
    for (const key of this.keys.values()) {
      const state = keyState(key, now);
      if ((state === 'pending' || state === 'active') && !algorithms.includes(key.alg)) {
        throw new Error(
          `the ${state} signing key ${key.kid} is ${key.alg}, which TOKEN_ALGORITHMS (${algorithms.join(',')}) does not accept: every token signed with it would be refused; add ${key.alg} to TOKEN_ALGORITHMS`,
        );
      }
    }
  }

  /** True once a key is loaded that signs now. */
  get ready(): boolean {
    return this.signingKey() !== undefined;
  }

  signingKey(now = this.options.clock.now()): LoadedKey | undefined {
    return signingKeyAt(this.keys.values(), now);
  }

  /** A key accepted for verification: pending, active or retired, not removed. */
  publishedKey(kid: string, now = this.options.clock.now()): LoadedKey | undefined {
    const key = this.keys.get(kid);
    return key !== undefined && isPublished(key, now) ? key : undefined;
  }

  published(now = this.options.clock.now()): LoadedKey[] {
    return [...this.keys.values()].filter((key) => isPublished(key, now));
  }

  private async load(row: StoredSigningKey, now: Date): Promise<LoadedKey> {
    const previous = this.keys.get(row.kid);
    const state = keyState(row, now);
    const needsPrivate = state === 'pending' || state === 'active';
    const times = { activatesAt: row.activatesAt, retiresAt: row.retiresAt, removesAt: row.removesAt };
    if (previous !== undefined && !needsPrivate) {
      // A retired key signs no more: its private key leaves memory.
      const { privateKey: _retired, ...publicOnly } = previous;
      return { ...publicOnly, ...times };
    }
    if (previous?.privateKey !== undefined) return { ...previous, ...times };
    const jwk: JWK = { ...publicPart(row.publicJwk), kid: row.kid, alg: row.alg, use: 'sig' };
    const base = { kid: row.kid, alg: row.alg, ...times, jwk, publicKey: createPublicKey({ key: jwk, format: 'jwk' }) };
    if (!needsPrivate) return base;
    const privateJwk = JSON.parse(this.encryption.decrypt(row.kid, row.privateKeyEncrypted).toString('utf8')) as JWK;
    return { ...base, privateKey: (await importJWK(privateJwk, row.alg)) as CryptoKey };
  }
}

/** Only the public members of an EC or OKP key, whatever the stored JWK carries. */
function publicPart(jwk: JWK): JWK {
  const { kty, crv, x, y } = jwk;
  return y === undefined ? { kty, crv, x } : { kty, crv, x, y };
}
