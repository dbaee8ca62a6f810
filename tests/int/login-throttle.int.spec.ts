import { setTimeout as sleep } from 'node:timers/promises';
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

async function refusal(throttle: PgLoginThrottle, k: AttemptKeys): Promise<TooManyAttemptsError | undefined> {
  try {
    await throttle.assertAllowed(k);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TooManyAttemptsError);
    return error as TooManyAttemptsError;
  }
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
  it('counts failures per email and per client address separately', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    await throttle.recordFailure(k);
    await throttle.recordFailure(k);
    await throttle.recordFailure(otherEmail(k)); // same client, another email
    await throttle.recordFailure(otherClient(k)); // same email, another client

    expect((await emailRow(k))?.failures).toBe(3);
    expect((await emailRow(otherEmail(k)))?.failures).toBe(1);
    expect((await clientRow(k))?.failures).toBe(3);
    expect((await clientRow(otherClient(k)))?.failures).toBe(1);
  });

  it('allows the free attempts, then refuses with a retry delay; other emails and clients are not affected', async () => {
    const metrics = createMetrics();
    const throttle = new PgLoginThrottle(db.knex, options({ metrics }));
    const k = keys();
    for (let i = 1; i < 3; i++) {
      await throttle.recordFailure(k);
      expect(await refusal(throttle, k), `after ${i} failures`).toBeUndefined();
    }
    await throttle.recordFailure(k);
    const refused = await refusal(throttle, k);
    expect(refused?.retryAfterSeconds).toBe(1);
    expect(refused?.message).toMatch(/retry in 1 s/);
    expect((await metrics.loginThrottled.get()).values[0]?.value).toBe(1);

    // The block is on this email: the same client with another email, and another client, go on.
    expect(await refusal(throttle, otherEmail(k))).toBeUndefined();
    expect(await refusal(throttle, { emailKey: `fresh.${k.emailKey}`, clientAddress: '192.0.2.77' })).toBeUndefined();

    // Never a permanent lockout: once the delay has passed, the email may try again.
    await sleep(1_200);
    expect(await refusal(throttle, k)).toBeUndefined();
  });

  it('doubles the delay with each further failure and caps it at maxDelaySeconds', async () => {
    const throttle = new PgLoginThrottle(db.knex, options({ freeAttempts: 3, maxDelaySeconds: 5 }));
    const k = keys();
    const delays: (number | null)[] = [];
    const retries: number[] = [];
    for (let failure = 1; failure <= 8; failure++) {
      await throttle.recordFailure(k);
      delays.push((await emailRow(k))?.delay ?? null);
      const refused = await refusal(throttle, k);
      if (refused !== undefined) retries.push(refused.retryAfterSeconds);
    }
    // No delay for the first two failures, then 1, 2, 4 and the cap of 5 seconds.
    expect(delays).toEqual([null, null, 1, 2, 4, 5, 5, 5]);
    expect(retries).toHaveLength(6);
    retries.forEach((retry, i) => {
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual([1, 2, 4, 5, 5, 5][i]!);
    });
    expect((await emailRow(k))?.failures).toBe(8);
  });

  it('blocks a client address after its own free attempts, whatever emails it tries', async () => {
    const throttle = new PgLoginThrottle(db.knex, options({ freeAttempts: 100, clientFreeAttempts: 4 }));
    const k = keys();
    for (let i = 0; i < 4; i++) await throttle.recordFailure({ ...k, emailKey: `spray${i}.${k.emailKey}` });
    const refused = await refusal(throttle, { ...k, emailKey: `never-tried.${k.emailKey}` });
    expect(refused?.retryAfterSeconds).toBe(1);
    expect(await refusal(throttle, otherClient({ ...k, emailKey: `never-tried.${k.emailKey}` }))).toBeUndefined();
  });

  it('starts the count over once the window has passed since the last failure', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    await throttle.recordFailure(k);
    await throttle.recordFailure(k);
    await age(`email:${k.emailKey}`, WINDOW + 1);
    await throttle.recordFailure(k);
    expect((await emailRow(k))?.failures).toBe(1);
    expect(await refusal(throttle, k)).toBeUndefined();

    // Inside the window the count goes on.
    await age(`email:${k.emailKey}`, WINDOW - 60);
    await throttle.recordFailure(k);
    expect((await emailRow(k))?.failures).toBe(2);
  });

  it('a success clears the email count but keeps the client count', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const k = keys();
    for (let i = 0; i < 3; i++) await throttle.recordFailure(k);
    expect(await refusal(throttle, k)).toBeDefined();
    await throttle.recordSuccess(k);
    expect(await emailRow(k)).toBeUndefined();
    expect((await clientRow(k))?.failures).toBe(3);
    expect(await refusal(throttle, k)).toBeUndefined();
    // The next failure counts from one again.
    await throttle.recordFailure(k);
    expect((await emailRow(k))?.failures).toBe(1);
  });

  it('cleanup deletes only counters whose window and delay are both over', async () => {
    const throttle = new PgLoginThrottle(db.knex, options());
    const oldFree = keys();
    const oldDelayOver = keys();
    const oldStillBlocked = keys();
    const recent = keys();
    for (const k of [oldFree, oldDelayOver, oldStillBlocked, recent]) await throttle.recordFailure(k);
    for (let i = 0; i < 3; i++) await throttle.recordFailure(oldDelayOver);
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

  it('two throttles on one database (two replicas) share the counts, also under concurrent failures', async () => {
    const a = new PgLoginThrottle(db.knex, options({ freeAttempts: 30, clientFreeAttempts: 1_000 }));
    const b = new PgLoginThrottle(replicaKnex, options({ freeAttempts: 30, clientFreeAttempts: 1_000 }));
    const k = keys();
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).recordFailure(k)));
    expect((await emailRow(k))?.failures).toBe(20);
    expect((await clientRow(k))?.failures).toBe(20);

    // Failures seen by replica A block the email on replica B, and the other way round.
    const k2 = keys();
    const strict = options({ freeAttempts: 2, maxDelaySeconds: 60 });
    const strictA = new PgLoginThrottle(db.knex, strict);
    const strictB = new PgLoginThrottle(replicaKnex, strict);
    await strictA.recordFailure(k2);
    await strictB.recordFailure(k2);
    await strictA.recordFailure(k2);
    await strictB.recordFailure(k2);
    expect((await emailRow(k2))?.delay).toBe(4);
    expect(await refusal(strictB, k2)).toBeDefined();
    expect(await refusal(strictA, k2)).toBeDefined();
    // And a success on B clears it for A.
    await strictB.recordSuccess(k2);
    expect(await refusal(strictA, k2)).toBeUndefined();
  });
});
