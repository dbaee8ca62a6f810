import type { Knex } from 'knex';
import { migrationNames, migrationSource } from './migrations/index.js';
import type { MigrationStatus } from '../../application/ports/schema-migrations.port.js';
import { CodedError } from '../../domain/shared/coded-error.js';

const options: Knex.MigratorConfig = { migrationSource };


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

/**
 * This build's migrations that the database lacks; a database may be ahead (a newer build's
 * migrations). Reads knex's table without creating it, so asking changes nothing.
 */
export async function missingMigrations(knex: Knex): Promise<readonly string[]> {
  if (!(await knex.schema.hasTable('knex_migrations'))) return migrationNames;
  const applied = new Set((await knex('knex_migrations').pluck('name')) as string[]);
  return migrationNames.filter((name) => !applied.has(name));
}

/** Stops start-up with what to do, rather than with the first query that misses a table. */
class SchemaBehindError extends CodedError {
  readonly code = 'DB.SCHEMA_BEHIND';

  constructor(readonly missing: readonly string[]) {
    super(`the database lacks migrations ${missing.join(', ')}: run \`identity migrate up\` first, or set MIGRATE_ON_START=true`);
  }
}

/** Applies the migrations when asked to; otherwise insists that they were applied. */
export async function ensureSchema(knex: Knex, migrateOnStart: boolean): Promise<void> {
  if (migrateOnStart) {
    await migrateUp(knex);
    return;
  }
  const missing = await missingMigrations(knex);
  if (missing.length > 0) throw new SchemaBehindError(missing);
}
