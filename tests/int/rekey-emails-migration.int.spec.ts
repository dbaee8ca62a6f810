import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { emailKey } from '../../src/domain/identity/value-objects/email.value-object.js';
import { KnexUserRepository } from '../../src/infrastructure/db/user.repository.js';
import { migrateDown, migrateUp, missingMigrations } from '../../src/infrastructure/db/migrator.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * 0006-rekey-emails on rows an older build wrote: the key registration stored then was
 * lower(NFC(address)), which login no longer computes for some addresses. The migration
 * rewrites those keys, and refuses (changing nothing) when two users become one address.
 */

const MIGRATION = '0006-rekey-emails';
/** The key function of the builds before 0006. */
const oldKey = (email: string) => email.normalize('NFC').toLowerCase();

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

beforeEach(async () => {
  await db.knex('users').delete();
  // The database arrives migrated: take 0006 back as if this build had not been deployed yet.
  await db.knex('knex_migrations').where({ name: MIGRATION }).delete();
});

/** A users row as the old build wrote it (email as stored, key as it computed it, unless given). */
async function oldRow(email: string, key = oldKey(email)): Promise<string> {
  const id = randomUUID();
  const now = new Date();
  await db.knex('users').insert({
    id,
    email,
    email_key: key,
    password_hash: '$2b$10$abcdefghijklmnopqrstuuJ1y0dQ0uGvXUb6lM4Bf4gq0Yx9p3vLm',
    first_name: 'Old',
    last_name: 'Row',
    status: 'active',
    created_at: now,
    updated_at: now,
  });
  return id;
}

interface KeyRow {
  id: string;
  email: string;
  email_key: string;
}
const users = () => db.knex<KeyRow>('users');
const keyOf = async (id: string) => (await users().where({ id }).first('email_key'))?.email_key;
const allKeys = async () => Object.fromEntries((await users().select('id', 'email_key')).map((r) => [r.id, r.email_key]));

describe('without collisions', () => {
  it('re-keys the rows the new function keys differently and leaves the others alone', async () => {
    const decomposed = await oldRow('aT\u0308@example.org');
    const plain = await oldRow('Ann.Lee@example.com');
    const precomposedDomain = await oldRow('zed@xt\u0308.com'); // the old build stored the domain lower-cased but not NFC
    expect(await keyOf(decomposed)).toBe('at\u0308@example.org');

    expect(await migrateUp(db.knex)).toEqual([MIGRATION]);

    expect(await keyOf(decomposed)).toBe('a\u1E97@example.org');
    expect(await keyOf(plain)).toBe('ann.lee@example.com');
    expect(await keyOf(precomposedDomain)).toBe('zed@x\u1E97.com');
    for (const id of [decomposed, plain, precomposedDomain]) {
      const row = await users().where({ id }).first('email', 'email_key');
      expect(row?.email_key).toBe(emailKey(row?.email ?? ''));
    }
  });

  it('after it, login finds the old user by any spelling of the address', async () => {
    const id = await oldRow('aT\u0308@example.org');
    await migrateUp(db.knex);
    const repository = new KnexUserRepository(db.knex);
    for (const typed of ['aT\u0308@example.org', 'a\u1E97@example.org', 'AT\u0308@EXAMPLE.ORG']) {
      expect((await repository.findByEmail(emailKey(typed)))?.id.value, typed).toBe(id);
    }
  });

  it('reads the table in batches: more rows than one batch are all checked', async () => {
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await oldRow(`bT\u0308${i}@example.org`));
    await db.knex.raw(
      `insert into users (id, email, email_key, password_hash, first_name, last_name, status, created_at, updated_at)
       select gen_random_uuid(), 'plain' || n || '@example.org', 'plain' || n || '@example.org', 'x', 'P', 'L', 'active', now(), now()
       from generate_series(1, 12000) as n`,
    );
    await migrateUp(db.knex);
    for (const [i, id] of ids.entries()) expect(await keyOf(id)).toBe(`b\u1E97${i}@example.org`);
  });

  it('down restores the previous keys', async () => {
    const id = await oldRow('aT\u0308@example.org');
    await migrateUp(db.knex);
    expect(await migrateDown(db.knex)).toEqual([MIGRATION]);
    expect(await keyOf(id)).toBe('at\u0308@example.org');
  });
});

describe('with collisions', () => {
  it('a row re-keyed onto a key another row holds: fails naming the count and the ids, and changes nothing', async () => {
    const decomposed = await oldRow('aT\u0308@example.org');
    const precomposed = await oldRow('a\u1E97@example.org');
    const bystander = await oldRow('cT\u0308@example.org');
    const before = await allKeys();

    const error = (await migrateUp(db.knex).catch((e: unknown) => e)) as Error | undefined;

    expect(error?.name).toBe('EmailKeyCollisionError');
    expect((error as { code?: string } | undefined)?.code).toBe('DB.EMAIL_KEY_COLLISION');
    expect(error?.message).toMatch(/^0006-rekey-emails: 1 group\(s\) of users \(2 users\) .*no row was changed/);
    expect(error?.message).toContain(decomposed);
    expect(error?.message).toContain(precomposed);
    expect(error?.message).not.toContain(bystander);
    expect(error?.message).toContain('identity migrate');
    expect(error?.message).not.toMatch(/example\.org/); // no email in a message that ends up in logs
    expect(await allKeys()).toEqual(before); // not even the bystander's key
    expect(await missingMigrations(db.knex)).toEqual([MIGRATION]);
  });

  it('two rows both re-keyed onto one key (as rows an even older build wrote) are reported too', async () => {
    const first = await oldRow('Eve@example.org', 'legacy-1');
    const second = await oldRow('EVE@example.org', 'legacy-2');
    const error = (await migrateUp(db.knex).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/1 group\(s\) of users \(2 users\)/);
    expect(error.message).toContain(first);
    expect(error.message).toContain(second);
    expect(await keyOf(first)).toBe('legacy-1');
  });

  it('resolved as the message says (another email for one of them), the migration then runs', async () => {
    const keep = await oldRow('aT\u0308@example.org');
    const other = await oldRow('a\u1E97@example.org');
    await expect(migrateUp(db.knex)).rejects.toThrow(/1 group/);
    await db.knex('users').where({ id: other }).update({ email: 'a.second@example.org' });
    expect(await migrateUp(db.knex)).toEqual([MIGRATION]);
    expect(await keyOf(keep)).toBe('a\u1E97@example.org');
    expect(await keyOf(other)).toBe('a.second@example.org');
  });
});
