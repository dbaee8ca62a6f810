import type { Knex } from 'knex';

export const name = '0004-create-login-attempts';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('login_attempts', (table) => {
    // 'email:<key>' or 'client:<address>'.
    table.text('key').primary();
    table.integer('failures').notNullable();
    table.timestamp('last_failure_at', { useTz: true }).notNullable();
    table.timestamp('blocked_until', { useTz: true });
  });
  await knex.raw('create index login_attempts_last_failure_idx on login_attempts (last_failure_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_attempts');
}
