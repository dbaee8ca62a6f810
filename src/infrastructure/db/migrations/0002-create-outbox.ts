import type { Knex } from 'knex';

export const name = '0002-create-outbox';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('outbox', (table) => {
    table.bigIncrements('id').primary();
    table.uuid('event_id').notNullable().unique({ indexName: 'outbox_event_id_unique' });
    table.text('event_type').notNullable();
    table.uuid('aggregate_id').notNullable();
    // The protobuf binary of the event, published as is.
    table.binary('payload').notNullable();
    table.jsonb('headers').notNullable().defaultTo('{}');
    // clock_timestamp(), not now(): the insert is the transaction's last write, so this is close to its commit.
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw('clock_timestamp()'));
    table.timestamp('published_at', { useTz: true });
    table.integer('attempts').notNullable().defaultTo(0);
    table.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.text('last_error');
    table.timestamp('dead_at', { useTz: true });
    // A relay's claim on the row: another relay leaves it alone until the lease runs out.
    table.timestamp('locked_until', { useTz: true });
    table.text('locked_by');
  });
  // The relay's scan: publishable rows in id order, and the oldest unpublished row per aggregate
  // (a dead-lettered row still holds back later events of its aggregate).
  await knex.raw('create index outbox_pending_idx on outbox (id) where published_at is null and dead_at is null');
  await knex.raw('create index outbox_unpublished_aggregate_idx on outbox (aggregate_id, id) where published_at is null');
  // Retention deletes published rows by age.
  await knex.raw('create index outbox_published_at_idx on outbox (published_at) where published_at is not null');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('outbox');
}
