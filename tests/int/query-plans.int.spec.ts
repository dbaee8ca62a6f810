import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { seedUsers } from '../../bench/lib/user-seeder.js';
import { KnexUserRepository } from '../../src/infrastructure/db/user.repository.js';
import { OutboxStore } from '../../src/infrastructure/outbox/outbox.store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * The benchmark's promise "p99 barely grows from 10k to 1M users" rests on index lookups.
 * These tests capture the SQL the adapters really send and ask PostgreSQL how it would run
 * it on a table of realistic size.
 */
const USERS = 50_000;
const PUBLISHED_EVENTS = 50_000;
const PENDING_EVENTS = 200;
const HASH = '$2b$10$abcdefghijklmnopqrstuuJ0l7m1cN8Zq1o9O8y1Yx3QeV8cX1Wvi';

let db: TestDatabase;
let emailPrefix: string;

beforeAll(async () => {
  db = await createTestDatabase();
  ({ emailPrefix } = await seedUsers(db.knex, USERS, HASH, 10_000));
  // Published history plus a few pending events, as the outbox looks in steady state.
  await db.knex.raw(
    `insert into outbox (event_id, event_type, aggregate_id, payload, published_at)
     select gen_random_uuid(), 'identity.v1.UserRegistered', gen_random_uuid(), '\\x0a00'::bytea,
            case when n <= ? then now() - interval '1 hour' end
     from generate_series(1, ?) as n`,
    [PUBLISHED_EVENTS, PUBLISHED_EVENTS + PENDING_EVENTS],
  );
  await db.knex.raw('analyze users');
  await db.knex.raw('analyze outbox');
}, 120_000);

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

interface CapturedQuery {
  readonly sql: string;
  readonly bindings: readonly unknown[];
}

/** Runs `call` and returns every statement Knex sent for it, as sent. */
async function capture(knex: Knex, call: () => Promise<unknown>): Promise<CapturedQuery[]> {
  const queries: CapturedQuery[] = [];
  const listener = (query: { sql: string; bindings?: readonly unknown[] }) => queries.push({ sql: query.sql, bindings: query.bindings ?? [] });
  knex.on('query', listener);
  try {
    await call();
  } finally {
    knex.off('query', listener);
  }
  return queries;
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** EXPLAIN (FORMAT JSON) of a captured statement, flattened to its nodes. */
async function planOf(query: CapturedQuery): Promise<PlanNode[]> {
  // The statement as Knex sent it, with its $n parameters bound the same way (extended protocol).
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  let result: pg.QueryResult<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>;
  try {
    result = await client.query(`explain (format json) ${query.sql}`, [...query.bindings]);
  } finally {
    await client.end();
  }
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    nodes.push(node);
    node.Plans?.forEach(walk);
  };
  walk(result.rows[0]!['QUERY PLAN'][0].Plan);
  return nodes;
}

const describePlan = (nodes: PlanNode[]) =>
  nodes.map((n) => `${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}`);

function email(raw: string): Email {
  const parsed = Email.parse(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe(`query plans with ${USERS.toLocaleString('en')} users`, () => {
  it('seeded the table (so the planner has a reason to prefer an index)', async () => {
    const [row] = await db.knex('users').count<{ n: string }[]>({ n: '*' });
    expect(Number(row?.n)).toBe(USERS);
  });

  it('looks a user up by email with the unique index, not a sequential scan', async () => {
    const repository = new KnexUserRepository(db.knex);
    const key = email(`${emailPrefix}31337@Seed.Example`).key;
    let found: unknown;
    const [query, ...others] = await capture(db.knex, async () => {
      found = await repository.findByEmail(key);
    });
    expect(others).toEqual([]);
    expect(found).toBeDefined(); // the captured statement is the one that found the user
    const plan = describePlan(await planOf(query!));
    expect(plan.some((node) => /^Index (Only )?Scan using users_email_key_unique on users$/.test(node)), plan.join(' > ')).toBe(true);
    expect(plan.filter((node) => node.includes('Seq Scan')), plan.join(' > ')).toEqual([]);
  });

  it('would see a sequential scan for a lookup the index does not serve (the check can fail)', async () => {
    const plan = describePlan(await planOf({ sql: 'select * from users where lower(email) = $1 limit 1', bindings: ['nobody@seed.example'] }));
    expect(plan.some((node) => /Seq Scan on users$/.test(node)), plan.join(' > ')).toBe(true);
  });

  it('checks whether an email exists with the unique index, not a sequential scan', async () => {
    const repository = new KnexUserRepository(db.knex);
    const [query] = await capture(db.knex, () => repository.existsByEmail(email('Nobody@Seed.Example').key));
    const plan = describePlan(await planOf(query!));
    expect(plan.some((node) => /^Index (Only )?Scan using users_email_key_unique on users$/.test(node)), plan.join(' > ')).toBe(true);
    expect(plan.filter((node) => node.includes('Seq Scan')), plan.join(' > ')).toEqual([]);
  });

  it('claims pending outbox rows through outbox_pending_idx, not a sequential scan', async () => {
    const store = new OutboxStore(db.knex);
    let claimed: unknown[] = [];
    const queries = await capture(db.knex, async () => {
      claimed = await store.claim({ relayId: 'plan-test', limit: 100, leaseSeconds: 30 });
    });
    expect(claimed).toHaveLength(100);
    const claim = queries.find((q) => /for update skip locked/i.test(q.sql));
    expect(claim).toBeDefined();
    const plan = describePlan(await planOf(claim!));
    expect(plan.some((node) => /^Index (Only )?Scan using outbox_pending_idx on outbox$/.test(node)), plan.join(' > ')).toBe(true);
    expect(plan.filter((node) => node.includes('Seq Scan')), plan.join(' > ')).toEqual([]);
  });
});
