import type { Knex } from 'knex';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { RefreshTokenDigest } from '../../src/domain/identity/value-objects/refresh-token.value-object.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { seedUsers } from '../../bench/lib/user-seeder.js';
import { KnexSessionRepository } from '../../src/infrastructure/db/session.repository.js';
import { SessionStore } from '../../src/infrastructure/db/session.store.js';
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

/** Issue 13: what refresh, logout, revocation and clean-up ask of the sessions tables. */
describe('query plans of sessions (50,000 sessions, 100,000 refresh tokens)', () => {
  const SESSIONS = 50_000;
  let userId: string;
  let digest: Buffer;

  beforeAll(async () => {
    await db.knex.raw(
      `insert into sessions (id, user_id, refresh_token_hash, created_at, last_refreshed_at, idle_expires_at, expires_at, revoked_at, revoked_reason, client_address)
       select gen_random_uuid(), u.id, sha256(u.id::text::bytea), now(), now(), now() + interval '14 days', now() + interval '30 days',
              case when n % 50 = 0 then now() - interval '1 minute' end, case when n % 50 = 0 then 'logout' end, '127.0.0.1'
       from (select id, row_number() over (order by id) as n from users limit ?) as u`,
      [SESSIONS],
    );
    await db.knex.raw(
      `insert into refresh_tokens (token_hash, session_id, issued_at)
       select refresh_token_hash, id, now() from sessions
       union all select sha256(refresh_token_hash), id, now() - interval '1 hour' from sessions`,
    );
    await db.knex.raw('analyze sessions');
    await db.knex.raw('analyze refresh_tokens');
    const row = await db.knex('sessions').whereNull('revoked_at').first<{ user_id: string; refresh_token_hash: Buffer }>();
    userId = row.user_id;
    digest = row.refresh_token_hash;
  }, 120_000);

  const planFor = async (run: (trx: Knex.Transaction) => Promise<unknown>, pick: (q: CapturedQuery) => boolean) => {
    // Inside a transaction that is rolled back: the statements run as the service sends them.
    let queries: CapturedQuery[] = [];
    await db.knex
      .transaction(async (trx) => {
        queries = await capture(db.knex, () => run(trx));
        throw new Error('rollback');
      })
      .catch(() => undefined);
    const query = queries.find(pick);
    expect(query, queries.map((q) => q.sql).join('\n')).toBeDefined();
    return describePlan(await planOf(query!));
  };
  const noSeqScan = (plan: string[]) => expect(plan.filter((node) => node.includes('Seq Scan')), plan.join(' > ')).toEqual([]);

  it('finds and locks the session of a refresh token through the two primary keys', async () => {
    const plan = await planFor((trx) => new KnexSessionRepository(trx).findByRefreshTokenForUpdate(RefreshTokenDigest.fromTrusted(digest)), (q) => /for update/i.test(q.sql));
    expect(plan.some((node) => /Index Scan using refresh_tokens_pkey on refresh_tokens/.test(node)), plan.join(' > ')).toBe(true);
    expect(plan.some((node) => /Index Scan using sessions_pkey on sessions/.test(node)), plan.join(' > ')).toBe(true);
    expect(plan.some((node) => /Index Scan using users_pkey on users/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });

  it("revokes a user's live sessions through sessions_user_live_idx", async () => {
    const plan = await planFor((trx) => new KnexSessionRepository(trx).revokeAllOfUser(UserId.fromTrusted(userId), 'password_changed', new Date()), (q) => /update "sessions"/i.test(q.sql));
    expect(plan.some((node) => /sessions_user_live_idx/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });

  it('deletes ended sessions in batches through sessions_ended_at_idx', async () => {
    const plan = await planFor(() => new SessionStore(db.knex).deleteEndedBefore(new Date(Date.now() - 3_600_000), 500), (q) => /delete from "sessions"/i.test(q.sql));
    expect(plan.some((node) => /sessions_ended_at_idx/.test(node)), plan.join(' > ')).toBe(true);
  });

  it('reads recent revocations (the resync) through sessions_revoked_at_idx', async () => {
    const plan = describePlan(await planOf({ sql: 'select "id", "revoked_at" from "sessions" where "revoked_at" > $1', bindings: [new Date(Date.now() - 930_000)] }));
    expect(plan.some((node) => /sessions_revoked_at_idx/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });
});

describe('ListUsers (issue 14): keyset pages, filters, all through indexes', () => {
  let middleId: string;
  let middleDisabledId: string;

  beforeAll(async () => {
    // One user in a hundred disabled, as a status filter meets them.
    await db.knex.raw("update users set status = 'disabled' where id in (select id from users order by id limit ?)", [USERS / 100]);
    middleId = ((await db.knex('users').select('id').orderBy('id').offset(USERS / 2).first()) as { id: string }).id;
    middleDisabledId = ((await db.knex('users').select('id').orderBy('id').offset(USERS / 200).first()) as { id: string }).id;
    await db.knex.raw('analyze users');
  });

  const planOfList = async (query: Parameters<KnexUserRepository['list']>[0]) => {
    const repository = new KnexUserRepository(db.knex);
    let found: unknown[] = [];
    const [captured, ...others] = await capture(db.knex, async () => {
      found = await repository.list(query);
    });
    expect(others).toEqual([]);
    expect(found.length).toBeGreaterThan(0); // the statement planned is one that returns rows
    return describePlan(await planOf(captured!));
  };
  const noSeqScan = (plan: string[]) => expect(plan.filter((node) => node.includes('Seq Scan')), plan.join(' > ')).toEqual([]);

  it('walks the primary key for the first page', async () => {
    const plan = await planOfList({ limit: 51 });
    expect(plan.some((node) => /^Index Scan using users_pkey on users$/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });

  it('starts a deep page at its key in the primary key (no offset)', async () => {
    const plan = await planOfList({ limit: 51, afterId: middleId });
    expect(plan.some((node) => /^Index Scan using users_pkey on users$/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });

  it('serves an email prefix from users_email_key_prefix_idx', async () => {
    const plan = await planOfList({ limit: 51, emailKeyPrefix: `${emailPrefix}3133` });
    expect(plan.some((node) => /users_email_key_prefix_idx/.test(node)), plan.join(' > ')).toBe(true);
    noSeqScan(plan);
  });

  it('serves a status from users_status_id_idx, first and deep pages', async () => {
    for (const afterId of [undefined, middleDisabledId]) {
      const plan = await planOfList({ limit: 51, status: 'disabled', afterId });
      expect(plan.some((node) => /users_status_id_idx/.test(node)), plan.join(' > ')).toBe(true);
      noSeqScan(plan);
    }
  });
});
