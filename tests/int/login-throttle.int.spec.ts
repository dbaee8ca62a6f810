import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptKeys } from '../../src/application/ports/login-throttle.port.js';
import { TooManyAttemptsError } from '../../src/domain/identity/identity.errors.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { PgLoginThrottle, type PgLoginThrottleOptions } from '../../src/infrastructure/throttle/pg-login-throttle.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const WINDOW = 900;
const options = (overrides: Partial<PgLoginThrottleOptions> = {}): PgLoginThrottleOptions => ({
  freeAttempts: 3,
  clientFreeAttempts: 10,
  windowSeconds: WINDOW,
  maxDelaySeconds: 5,
  metrics: createMetrics(),
  ...overrides,
});

let db: TestDatabase;
/** A second pool on the same database: another replica of the service. */
let replicaKnex: Knex;

beforeAll(async () => {
  db = await createTestDatabase();
  replicaKnex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 5 } });
});

afterAll(async () => {
  await replicaKnex?.destroy();
  await db?.[Symbol.asyncDispose]();
});

let counter = 0;
/** Keys of their own for each test, so tests sharing the table never see each other's counts. */
function keys(): AttemptKeys {
  const n = ++counter;
  return { emailKey: `user${n}.${Date.now()}@x.io`, clientAddress: `10.${n % 250}.${Date.now() % 250}.${n % 200}` };
}
const otherEmail = (k: AttemptKeys): AttemptKeys => ({ ...k, emailKey: `other.${k.emailKey}` });
const otherClient = (k: AttemptKeys): AttemptKeys => ({ ...k, clientAddress: `${k.clientAddress}9` });

interface Row {
  failures: number;
  /** blocked_until - last_failure_at, in seconds: the delay the last failure set. */
  delay: number | null;
}

async function row(key: string): Promise<Row | undefined> {
  const found = (await db.knex('login_attempts')
    .where({ key })
    .select(
      'failures',
      db.knex.raw('extract(epoch from blocked_until - last_failure_at)::float8 as delay'),
    )
    .first()) as { failures: number; delay: number | null } | undefined;
  return found && { failures: Number(found.failures), delay: found.delay === null ? null : Math.round(found.delay) };
}
const emailRow = (k: AttemptKeys) => row(`email:${k.emailKey}`);
const clientRow = (k: AttemptKeys) => row(`client:${k.clientAddress}`);

/** One attempt through begin(): undefined when it was let through (and counted), else the refusal. */
async function attempt(throttle: PgLoginThrottle, k: AttemptKeys): Promise<TooManyAttemptsError | undefined> {
  try {
    await throttle.begin(k);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TooManyAttemptsError);
    return error as TooManyAttemptsError;
  }
}

/** Whether a key is waiting out a delay now, read without counting anything. */
async function blocked(key: string): Promise<boolean> {
  const found = await db.knex('login_attempts').where({ key }).where('blocked_until', '>', db.knex.fn.now()).first();
  return found !== undefined;
}

/** Ends a key's running delay, as if it had been waited out. */
async function endDelay(key: string): Promise<void> {
  await db.knex('login_attempts').where({ key }).update({ blocked_until: db.knex.raw("now() - interval '1 millisecond'") });
}

/** As if `seconds` had passed since the key's last failure (and its delay). */
async function age(key: string, seconds: number): Promise<void> {
  await db.knex('login_attempts')
    .where({ key })
    .update({
      last_failure_at: db.knex.raw('last_failure_at - make_interval(secs => ?)', [seconds]),
      blocked_until: db.knex.raw('blocked_until - make_interval(secs => ?)', [seconds]),
    });
}

describe('PgLoginThrottle on PostgreSQL', () => {
  it('counts attempts per email and per client address separately', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    await throttle.begin(k);
    await throttle.begin(k);
    await throttle.begin(otherEmail(k)); // same client, another email
    await throttle.begin(otherClient(k)); // same email, another client

    expect((await emailRow(k))?.failures).toBe(3);
    expect((await emailRow(otherEmail(k)))?.failures).toBe(1);
    expect((await clientRow(k))?.failures).toBe(3);
    expect((await clientRow(otherClient(k)))?.failures).toBe(1);
  });

  it('lets the free attempts through, then refuses with a retry delay without counting; others are not affected', async () => {
    const metrics = createMetrics();
    const throttle = new PgLoginThrottle(db.knex, options({ metrics }));
    const k = keys();
    for (let i = 1; i <= 3; i++) expect(await attempt(throttle, k), `attempt ${i}`).toBeUndefined();
    const refused = await attempt(throttle, k);
    expect(refused?.retryAfterSeconds).toBe(1);
    expect(refused?.message).toMatch(/retry in 1 s/);
    expect((await metrics.loginThrottled.get()).values[0]?.value).toBe(1);
    expect((await emailRow(k))?.failures).toBe(3);

    // The block is on this email: the same client with another email, and another client, go on.
    expect(await attempt(throttle, otherEmail(k))).toBeUndefined();
    expect(await attempt(throttle, { emailKey: `fresh.${k.emailKey}`, clientAddress: '192.0.2.77' })).toBeUndefined();

    // Never a permanent lockout: once the delay has passed, the email may try again. The
    // throttle reads the database's clock (the one all replicas share), so time passes by
    // moving the counter's times back by the delay it announced, not by waiting for real.
    expect((await emailRow(k))?.delay).toBe(1);
    await age(`email:${k.emailKey}`, refused?.retryAfterSeconds ?? Number.NaN);
    expect(await attempt(throttle, k)).toBeUndefined();
  });

  it('doubles the delay with each further attempt and caps it at maxDelaySeconds', async () => {
    const throttle = new PgLoginThrottle(db.knex, options({ freeAttempts: 3, maxDelaySeconds: 5 }));
    const k = keys();
    const delays: (number | null)[] = [];
    for (let n = 1; n <= 8; n++) {
      await endDelay(`email:${k.emailKey}`);
      expect(await attempt(throttle, k), `attempt ${n}`).toBeUndefined();
      delays.push((await emailRow(k))?.delay ?? null);
      if (n >= 3) expect((await attempt(throttle, k))?.retryAfterSeconds).toBeLessThanOrEqual(Math.min(2 ** (n - 3), 5));
    }
    // No delay for the first two, then 1, 2, 4 and the cap of 5 seconds.
    expect(delays).toEqual([null, null, 1, 2, 4, 5, 5, 5]);
    expect((await emailRow(k))?.failures).toBe(8);
  });

  it('blocks a client address after its own free attempts, whatever emails it tries', async () => {
    const throttle = new PgLoginThrottle(db.knex, options({ freeAttempts: 100, clientFreeAttempts: 4 }));
    const k = keys();
    for (let i = 0; i < 4; i++) await throttle.begin({ ...k, emailKey: `spray${i}.${k.emailKey}` });
    const refused = await attempt(throttle, { ...k, emailKey: `never-tried.${k.emailKey}` });
    expect(refused?.retryAfterSeconds).toBe(1);
    expect(await attempt(throttle, otherClient({ ...k, emailKey: `never-tried.${k.emailKey}` }))).toBeUndefined();
  });

  it('starts the count over once the window has passed since the last attempt', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    await throttle.begin(k);
    await throttle.begin(k);
    await age(`email:${k.emailKey}`, WINDOW + 1);
    await throttle.begin(k);
    expect((await emailRow(k))?.failures).toBe(1);
    expect(await blocked(`email:${k.emailKey}`)).toBe(false);

    // Inside the window the count goes on.
    await age(`email:${k.emailKey}`, WINDOW - 60);
    await throttle.begin(k);
    expect((await emailRow(k))?.failures).toBe(2);
  });

  it('a success clears the email count and takes back only that attempt from the client count', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    for (let i = 0; i < 3; i++) await throttle.begin(k);
    expect(await blocked(`email:${k.emailKey}`)).toBe(true);
    await throttle.succeeded(k);
    expect(await emailRow(k)).toBeUndefined();
    expect((await clientRow(k))?.failures).toBe(2);
    expect(await attempt(throttle, k)).toBeUndefined();
    expect((await emailRow(k))?.failures).toBe(1);
  });

  it('an attempt abandoned without a verdict is taken back from both counts, and its delay with it', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    for (let i = 0; i < 3; i++) await throttle.begin(k);
    expect(await blocked(`email:${k.emailKey}`)).toBe(true);
    await throttle.abandoned(k);
    expect((await emailRow(k))?.failures).toBe(2);
    expect((await clientRow(k))?.failures).toBe(2);
    expect(await blocked(`email:${k.emailKey}`)).toBe(false);
  });

  it('cleanup deletes only counters whose window and delay are both over', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const oldFree = keys();
    const oldDelayOver = keys();
    const oldStillBlocked = keys();
    const recent = keys();
    for (const k of [oldFree, oldDelayOver, oldStillBlocked, recent]) await throttle.begin(k);
    for (let i = 0; i < 2; i++) await throttle.begin(oldDelayOver);
    await age(`email:${oldFree.emailKey}`, WINDOW + 5);
    await age(`email:${oldDelayOver.emailKey}`, WINDOW + 5);
    // An old counter whose delay is still running (as after many failures at the cap).
    await age(`email:${oldStillBlocked.emailKey}`, WINDOW + 5);
    await db.knex('login_attempts').where({ key: `email:${oldStillBlocked.emailKey}` }).update({ blocked_until: db.knex.raw("now() + interval '1 minute'") });

    const before = Number((await db.knex('login_attempts').count<{ n: string }[]>({ n: '*' }))[0]?.n);
    const deleted = await throttle.cleanup();
    expect(deleted).toBe(2);
    expect(Number((await db.knex('login_attempts').count<{ n: string }[]>({ n: '*' }))[0]?.n)).toBe(before - 2);
    expect(await emailRow(oldFree)).toBeUndefined();
    expect(await emailRow(oldDelayOver)).toBeUndefined();
    expect(await emailRow(oldStillBlocked)).toBeDefined();
    expect(await emailRow(recent)).toBeDefined();
    expect(await clientRow(oldFree)).toBeDefined(); // its client counter is recent
  });

  it('two throttles on one database (two replicas) share the counts, and a concurrent burst gets only the free attempts', async () => {
    const a = new PgLoginThrottle(db.knex, options({ freeAttempts: 30, clientFreeAttempts: 1_000 }));
    const b = new PgLoginThrottle(replicaKnex, options({ freeAttempts: 30, clientFreeAttempts: 1_000 }));
    const k = keys();
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).begin(k)));
    expect((await emailRow(k))?.failures).toBe(20);
    expect((await clientRow(k))?.failures).toBe(20);

    // 20 concurrent attempts on a limit of 3: exactly 3 are let through, over both replicas.
    const strict = options({ freeAttempts: 3, maxDelaySeconds: 60 });
    const strictA = new PgLoginThrottle(db.knex, strict);
    const strictB = new PgLoginThrottle(replicaKnex, strict);
    const k2 = keys();
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(i % 2 === 0 ? strictA : strictB, k2)));
    expect(outcomes.filter((refused) => refused === undefined)).toHaveLength(3);
    expect((await emailRow(k2))?.failures).toBe(3);
    // And a success on B clears it for A.
    await strictB.succeeded(k2);
    expect(await attempt(strictA, k2)).toBeUndefined();
  });
});
