import type { Knex } from 'knex';
import { migrationSource } from './migrations/index.js';

const options: Knex.MigratorConfig = { migrationSource };

export interface MigrationStatus {
  readonly applied: readonly string[];
  readonly pending: readonly string[];
}

export async function migrateUp(knex: Knex): Promise<readonly string[]> {
  const [, applied] = (await knex.migrate.latest(options)) as [number, string[]];
  return applied;
}

/** Rolls back the last batch of migrations. */
export async function migrateDown(knex: Knex): Promise<readonly string[]> {
  const [, reverted] = (await knex.migrate.rollback(options)) as [number, string[]];
  return reverted;
}

export async function migrationStatus(knex: Knex): Promise<MigrationStatus> {
  const [done, pending] = (await knex.migrate.list(options)) as [{ name: string }[], { name: string }[]];
  return { applied: done.map((m) => m.name), pending: pending.map((m) => migrationSource.getMigrationName(m as never)) };
}
