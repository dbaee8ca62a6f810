import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import bcrypt from 'bcrypt';
import { SEED_PASSWORD, seedUsers } from '../../bench/lib/user-seeder.js';
import { GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv } from '../helpers/service.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

interface SeedOutput {
  inserted: number;
  emailPrefix: string;
  seconds: number;
}

let hash: Promise<string> | undefined;

/** The benchmarks' seeder (it left the production CLI in issue 12), timed as they use it. */
async function seed(users: number): Promise<{ output: SeedOutput }> {
  hash ??= bcrypt.hash(SEED_PASSWORD, 10);
  const started = Date.now();
  const result = await seedUsers(db.knex, users, await hash, 5_000);
  return { output: { ...result, seconds: (Date.now() - started) / 1000 } };
}

async function countWithPrefix(prefix: string): Promise<{ rows: number; distinctKeys: number; active: number }> {
  const row = (await db.knex('users')
    .where('email_key', 'like', `${prefix}%`)
    .select(db.knex.raw('count(*) as rows'), db.knex.raw('count(distinct email_key) as keys'), db.knex.raw("count(*) filter (where status = 'active') as active"))
    .first()) as { rows: string; keys: string; active: string };
  return { rows: Number(row.rows), distinctKeys: Number(row.keys), active: Number(row.active) };
}

describe('the benchmarks\' user seeder', { timeout: 180_000 }, () => {
  let first: SeedOutput;

  it('inserts 2000 users quickly, with one precomputed hash instead of 2000 bcrypt calls', async () => {
    const { output } = await seed(2_000);
    first = output;
    expect(output).toMatchObject({ inserted: 2_000 });
    expect(output.emailPrefix).toMatch(/^seed-[0-9a-f]{8}-$/);
    // 2000 bcrypt calls at cost 10 would take well over a minute on this machine; the insert takes a fraction of a second.
    expect(output.seconds).toBeLessThan(5);
    expect(await countWithPrefix(output.emailPrefix)).toEqual({ rows: 2_000, distinctKeys: 2_000, active: 2_000 });
    const hashes = await db.knex('users').where('email_key', 'like', `${output.emailPrefix}%`).countDistinct<{ n: string }[]>({ n: 'password_hash' });
    expect(Number(hashes[0]?.n)).toBe(1);
  });

  it('seeds again on the same database without colliding with the first run', async () => {
    const { output } = await seed(2_000);
    expect(output.emailPrefix).not.toBe(first.emailPrefix);
    expect(await countWithPrefix(output.emailPrefix)).toEqual({ rows: 2_000, distinctKeys: 2_000, active: 2_000 });
    const [total] = await db.knex('users').count<{ n: string }[]>({ n: '*' });
    expect(Number(total?.n)).toBe(4_000);
  });

  it('seeds real users: one of them logs in with the seed password through the service', async () => {
    await using service = await startTestService(testEnv(db));
    const client = new GrpcIdentityClient(service.url);
    try {
      const address = `${first.emailPrefix}1234@seed.example`;
      const auth = await client.authenticate({ email: address.toUpperCase(), password: SEED_PASSWORD });
      const stored: { id: string } = await db.knex('users').where({ email_key: address }).first('id');
      expect(auth['user']).toMatchObject({ id: stored.id, email: address, first_name: 'Seed', last_name: 'User 1234', status: 'USER_STATUS_ACTIVE' });
      const verified = await client.verifyToken({ token: auth['access_token'] });
      expect(verified['user_id']).toBe(stored.id);
    } finally {
      client.close();
    }
  });
});
