import type { Knex } from 'knex';
import type { SchemaMigrations } from '../../application/ports/schema-migrations.port.js';
import { migrateDown, migrateUp, migrationStatus } from './migrator.js';

export function knexSchemaMigrations(knex: Knex): SchemaMigrations {
  return {
    up: () => migrateUp(knex),
    down: () => migrateDown(knex),
    status: () => migrationStatus(knex),
  };
}
