import type { Knex } from 'knex';

export const name = '0003-create-signing-keys';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('signing_keys', (table) => {
    // RFC 7638 thumbprint of the public key.
    table.text('kid').primary();
    table.text('alg').notNullable();
    table.jsonb('public_jwk').notNullable();
    // AES-256-GCM under KEY_ENCRYPTION_KEY: version byte, nonce, tag, ciphertext.
    table.binary('private_key_encrypted').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable();
    // Published from created_at; signs from activates_at until retires_at; published until removes_at.
    table.timestamp('activates_at', { useTz: true }).notNullable();
    table.timestamp('retires_at', { useTz: true });
    table.timestamp('removes_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('signing_keys');
}
