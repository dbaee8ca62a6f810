import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrateUp } from '../../src/infrastructure/db/migrator.js';
import type { Scope } from './scope.js';

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  /** A small pool for the bench's own setup queries (seeding, backlog, sizes). */
  readonly knex: Knex;
  /**
   * KEY_ENCRYPTION_KEY for every service started on this database: the first one stores its
   * signing key encrypted under it, and a later one with another key would refuse to start.
   */
  readonly keyEncryptionKey: string;
}

/**
 * A fresh database on the machine's PostgreSQL, migrated with the service's own migrations,
 * dropped (with force) when `scope` closes. Names start with identity_bench_ so a leftover
 * from a killed run is easy to spot.
 */
export async function createDatabase(adminUrl: string, scope: Scope): Promise<BenchDatabase> {
  const name = `identity_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(adminUrl, `create database ${name}`);
  scope.defer(`drop database ${name}`, async () => void (await adminQuery(adminUrl, `drop database if exists ${name} with (force)`)));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const knex = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 } });
  scope.defer(`close pool on ${name}`, () => knex.destroy());
  await migrateUp(knex);
  return { name, url: url.toString(), knex, keyEncryptionKey: randomBytes(32).toString('base64') };
}

/** Runs one statement on the admin database; answers the first column of the first row, if any. */
export async function adminQuery(adminUrl: string, sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const result = await client.query<Record<string, string>>(sql);
    return Object.values(result.rows[0] ?? {})[0] ?? '';
  } finally {
    await client.end();
  }
}

/** pg_total_relation_size: the table with its indexes and TOAST, in bytes. */
export async function tableBytes(knex: Knex, table: string): Promise<number> {
  const result = await knex.raw<{ rows: { bytes: string }[] }>('select pg_total_relation_size(?::regclass) as bytes', [table]);
  return Number(result.rows[0]?.bytes ?? 0);
}
