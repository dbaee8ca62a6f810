import type { JWK } from 'jose';
import type { Knex } from 'knex';
import { withDbErrors } from '../db/db-errors.js';
import type { KeyTimes } from './key-lifecycle.js';

export type SigningAlgorithm = 'ES256' | 'EdDSA';

export interface StoredSigningKey extends KeyTimes {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly publicJwk: JWK;
  readonly privateKeyEncrypted: Buffer;
  readonly createdAt: Date;
}

interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: JWK | string;
  private_key_encrypted: Buffer | Uint8Array;
  created_at: Date;
  activates_at: Date;
  retires_at: Date | null;
  removes_at: Date | null;
}

const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function toDomain(row: SigningKeyRow): StoredSigningKey {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlgorithm,
    publicJwk: typeof row.public_jwk === 'string' ? (JSON.parse(row.public_jwk) as JWK) : row.public_jwk,
    privateKeyEncrypted: Buffer.from(row.private_key_encrypted),
    createdAt: new Date(row.created_at),
    activatesAt: new Date(row.activates_at),
    retiresAt: date(row.retires_at),
    removesAt: date(row.removes_at),
  };
}

/** An arbitrary constant: the advisory lock that serialises key creation and rotation across replicas. */
const KEY_ADMIN_LOCK = 0x1d_e7_17_01;

/** The signing_keys table. */
export class SigningKeyStore {
  constructor(private readonly knex: Knex) {}

  list(db: Knex | Knex.Transaction = this.knex): Promise<StoredSigningKey[]> {
    return withDbErrors(async () => {
      const rows = (await db('signing_keys').select('*').orderBy('activates_at')) as SigningKeyRow[];
      return rows.map(toDomain);
    });
  }

  /** Runs `work` in a transaction holding the key administration lock. */
  withAdminLock<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return withDbErrors(() =>
      this.knex.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(?)', [KEY_ADMIN_LOCK]);
        return work(trx);
      }),
    );
  }

  async insert(trx: Knex.Transaction, key: StoredSigningKey): Promise<void> {
    await trx('signing_keys').insert({
      kid: key.kid,
      alg: key.alg,
      public_jwk: JSON.stringify(key.publicJwk),
      private_key_encrypted: key.privateKeyEncrypted,
      created_at: key.createdAt,
      activates_at: key.activatesAt,
      retires_at: key.retiresAt,
      removes_at: key.removesAt,
    });
  }

  async retire(trx: Knex.Transaction, kid: string, retiresAt: Date, removesAt: Date): Promise<void> {
    await trx('signing_keys').where({ kid }).update({ retires_at: retiresAt, removes_at: removesAt });
  }

  /** Deletes keys whose last token has expired, private key material included. */
  deleteRemoved(now: Date): Promise<number> {
    return withDbErrors(() => this.knex('signing_keys').where('removes_at', '<=', now).delete());
  }
}
