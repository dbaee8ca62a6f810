import type { Knex } from 'knex';

export const name = '0007-create-sessions';

/** Every revocation a replica must learn of is announced on this channel at commit. */
export const REVOCATION_CHANNEL = 'identity_revocation';

const REASONS = ['logout', 'refresh_token_reused', 'password_changed', 'user_disabled', 'user_deleted', 'admin'];

/**
 * Sessions and their refresh tokens (stored only as SHA-256), the user's `tokens_valid_after`,
 * and the triggers that tell every replica about a revocation when it commits: a session
 * revoked, a user whose status or `tokens_valid_after` changed (NOTIFY is delivered at commit,
 * and only if the transaction commits).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (table) => {
    // Tokens of the user issued before this instant are refused (password change).
    table.timestamp('tokens_valid_after', { useTz: true });
  });
  // The revocation resync reads recent cut-offs and recently disabled (or deleted) users.
  await knex.raw('create index users_tokens_valid_after_idx on users (tokens_valid_after) where tokens_valid_after is not null');
  await knex.raw("create index users_inactive_updated_at_idx on users (updated_at) where status <> 'active'");

  await knex.schema.createTable('sessions', (table) => {
    table.uuid('id').primary();
    table.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    // SHA-256 of the current refresh token and of the one it replaced (the reuse grace).
    table.binary('refresh_token_hash').notNullable();
    table.binary('previous_refresh_token_hash');
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.timestamp('last_refreshed_at', { useTz: true }).notNullable();
    table.timestamp('idle_expires_at', { useTz: true }).notNullable();
    table.timestamp('expires_at', { useTz: true }).notNullable();
    table.timestamp('revoked_at', { useTz: true });
    table.text('revoked_reason').checkIn(REASONS, 'sessions_revoked_reason_check');
    table.text('client_address').notNullable();
  });
  // Revoking every live session of a user (password change, disable).
  await knex.raw('create index sessions_user_live_idx on sessions (user_id) where revoked_at is null');
  // The revocation resync: sessions revoked within the last access-token lifetime.
  await knex.raw('create index sessions_revoked_at_idx on sessions (revoked_at) where revoked_at is not null');
  // Clean-up: sessions that ended (revoked or expired) long enough ago.
  await knex.raw('create index sessions_ended_at_idx on sessions ((coalesce(revoked_at, least(idle_expires_at, expires_at))))');

  // Every refresh token a session was ever given: a consumed one presented again is reuse,
  // however many rotations ago it was consumed.
  await knex.schema.createTable('refresh_tokens', (table) => {
    table.binary('token_hash').primary();
    table.uuid('session_id').notNullable().references('id').inTable('sessions').onDelete('CASCADE');
    table.timestamp('issued_at', { useTz: true }).notNullable();
  });
  await knex.raw('create index refresh_tokens_session_idx on refresh_tokens (session_id)');

  // `at`: when the change was made, close to its commit; replicas measure propagation from it.
  await knex.raw(`
    create function identity_session_revoked_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('${REVOCATION_CHANNEL}', json_build_object(
        'kind', 'session', 'id', new.id, 'revokedAt', floor(extract(epoch from new.revoked_at) * 1000),
        'at', floor(extract(epoch from clock_timestamp()) * 1000))::text);
      return null;
    end
    $$`);
  await knex.raw(`
    create trigger sessions_revoked_notify after update of revoked_at on sessions for each row
    when (old.revoked_at is null and new.revoked_at is not null) execute function identity_session_revoked_notify()`);
  await knex.raw(`
    create function identity_user_revocation_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('${REVOCATION_CHANNEL}', json_build_object(
        'kind', 'user', 'id', new.id, 'status', new.status,
        'tokensValidAfter', floor(extract(epoch from new.tokens_valid_after) * 1000),
        'updatedAt', floor(extract(epoch from new.updated_at) * 1000),
        'at', floor(extract(epoch from clock_timestamp()) * 1000))::text);
      return null;
    end
    $$`);
  await knex.raw(`
    create trigger users_revocation_notify after update of status, tokens_valid_after on users for each row
    when (old.status is distinct from new.status or old.tokens_valid_after is distinct from new.tokens_valid_after)
    execute function identity_user_revocation_notify()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger users_revocation_notify on users');
  await knex.raw('drop function identity_user_revocation_notify()');
  await knex.raw('drop trigger sessions_revoked_notify on sessions');
  await knex.raw('drop function identity_session_revoked_notify()');
  await knex.schema.dropTable('refresh_tokens');
  await knex.schema.dropTable('sessions');
  await knex.raw('drop index users_inactive_updated_at_idx');
  await knex.raw('drop index users_tokens_valid_after_idx');
  await knex.schema.alterTable('users', (table) => {
    table.dropColumn('tokens_valid_after');
  });
}
