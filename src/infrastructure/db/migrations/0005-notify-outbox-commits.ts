import type { Knex } from 'knex';

export const name = '0005-notify-outbox-commits';

/**
 * Every transaction that writes outbox rows notifies channel `identity_outbox` when it
 * commits (PostgreSQL delivers NOTIFY at commit, once per transaction for one payload), so
 * relays in every replica wake at once instead of at their next poll, whoever wrote the rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function identity_outbox_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('identity_outbox', '');
      return null;
    end
    $$`);
  await knex.raw('create trigger outbox_notify after insert on outbox for each statement execute function identity_outbox_notify()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger outbox_notify on outbox');
  await knex.raw('drop function identity_outbox_notify()');
}
