import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_PASSWORD } from '../../src/infrastructure/db/user-seeder.js';
import { GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/process.js';
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
  password: string;
  seconds: number;
}

async function seed(users: number): Promise<{ output: SeedOutput; wallMs: number }> {
  const started = Date.now();
  const result = await runCli(['dev', 'seed', '--users', String(users)], { DATABASE_URL: db.url, BCRYPT_COST: '10', LOG_LEVEL: 'warn' }, 120_000);
  const wallMs = Date.now() - started;
  expect(result.code, result.stderr).toBe(0);
  expect(result.stderr).toBe('');
  return { output: JSON.parse(result.stdout) as SeedOutput, wallMs };
}

async function countWithPrefix(prefix: string): Promise<{ rows: number; distinctKeys: number; active: number }> {
  const row = (await db.knex('users')
    .where('email_key', 'like', `${prefix}%`)
    .select(db.knex.raw('count(*) as rows'), db.knex.raw('count(distinct email_key) as keys'), db.knex.raw("count(*) filter (where status = 'active') as active"))
    .first()) as { rows: string; keys: string; active: string };
  return { rows: Number(row.rows), distinctKeys: Number(row.keys), active: Number(row.active) };
}

describe('identity dev seed', { timeout: 180_000 }, () => {
  let first: SeedOutput;

  it('inserts 2000 users quickly, with one precomputed hash instead of 2000 bcrypt calls', async () => {
    const { output, wallMs } = await seed(2_000);
    first = output;
    expect(output).toMatchObject({ inserted: 2_000, password: SEED_PASSWORD });
    expect(output.emailPrefix).toMatch(/^seed-[0-9a-f]{8}-$/);
    // 2000 bcrypt calls at cost 10 would take well over a minute on this machine; the insert takes a fraction of a second.
    expect(output.seconds).toBeLessThan(5);
    expect(wallMs).toBeLessThan(60_000);
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
