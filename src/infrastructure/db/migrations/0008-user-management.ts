import type { Knex } from 'knex';

export const name = '0008-user-management';

/**
 * User management (issue 14): the status `deleted` (erasure keeps the id as a tombstone and
 * drops the email, names and hash, so those columns take NULL, but only for a deleted row),
 * the reason a user was disabled, and the indexes ListUsers runs on. The prefix index is on
 * `email_key collate "C"`: under the C collation `like 'ann%'` is a range scan (whatever the
 * database's collation), and equality lookups (`email_key = ?`, default collation) cannot use
 * it, so login and registration keep the unique index: a plain `text_pattern_ops` index took
 * their place in the planner's choice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table users drop constraint users_status_check');
  await knex.raw("alter table users add constraint users_status_check check (status in ('active', 'disabled', 'deleted'))");
  await knex.schema.alterTable('users', (table) => {
    table.setNullable('email');
    table.setNullable('email_key');
    table.setNullable('password_hash');
    table.setNullable('first_name');
    table.setNullable('last_name');
    table.text('disabled_reason');
  });
  await knex.raw(`alter table users add constraint users_erased_check check (
    (status = 'deleted') = (email is null and email_key is null and password_hash is null and first_name is null and last_name is null))`);
  await knex.raw('create index users_email_key_prefix_idx on users ((email_key collate "C"), id)');
  // ListUsers filtered by status walks ids in order within one status.
  await knex.raw('create index users_status_id_idx on users (status, id)');
}

export async function down(knex: Knex): Promise<void> {
  // Erased rows cannot be put back: their personal data is gone. Rolling back removes them.
  await knex('users').where({ status: 'deleted' }).delete();
  await knex.raw('drop index users_status_id_idx');
  await knex.raw('drop index users_email_key_prefix_idx');
  await knex.raw('alter table users drop constraint users_erased_check');
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('disabled_reason');
    table.dropNullable('email');
    table.dropNullable('email_key');
    table.dropNullable('password_hash');
    table.dropNullable('first_name');
    table.dropNullable('last_name');
  });
  await knex.raw('alter table users drop constraint users_status_check');
  await knex.raw("alter table users add constraint users_status_check check (status in ('active', 'disabled'))");
}
