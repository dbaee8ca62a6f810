import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { inject } from 'vitest';
import { migrateUp } from '../../src/infrastructure/db/migrator.js';

export interface TestDatabase extends AsyncDisposable {
  readonly url: string;
  readonly name: string;
  /** A pool on the database, migrated. */
  readonly knex: Knex;
}

/** A fresh, migrated database for one test file; disposing it drops it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `identity_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const knex = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 10 } });
  await migrateUp(knex);
  return {
    url: url.toString(),
    name,
    knex,
    async [Symbol.asyncDispose]() {
      await knex.destroy();
      await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
