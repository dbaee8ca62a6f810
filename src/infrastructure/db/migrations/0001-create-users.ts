import type { Knex } from 'knex';

export const name = '0001-create-users';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (table) => {
    table.uuid('id').primary();
    table.text('email').notNullable();
    // The address lower-cased by the service, so uniqueness does not depend on the
    // database's locale (lower() differs between a C-locale PostgreSQL and ICU).
    table.text('email_key').notNullable().unique({ indexName: 'users_email_key_unique' });
    table.text('password_hash').notNullable();
    table.text('first_name').notNullable();
    table.text('last_name').notNullable();
    table.text('status').notNullable().checkIn(['active', 'disabled'], 'users_status_check');
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.timestamp('updated_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
