import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { deleteStream, insertOutboxRows, readStream, waitUntil } from '../helpers/nats.js';
import { runCli } from '../helpers/process.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

// Issue 4: a row the relay cannot publish is retried with backoff, dead-lettered after
// OUTBOX_MAX_ATTEMPTS, reported, and holds back only later events of its own aggregate.

// Processes, backlogs and NATS restarts are slow on a machine shared with other suites.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const NATS_URL = inject('natsUrl');
const POISON_TYPE = 'identity.v1.NoSuchEvent';

const streams = new Set<string>();
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const stream of streams) await deleteStream(NATS_URL, stream);
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  cleanups.push(async () => {
    await db[Symbol.asyncDispose]();
  });
  return db;
}

function envFor(db: TestDatabase, extra: Record<string, string> = {}): Record<string, string> {
  const env = testEnv(db, extra);
  streams.add(env['NATS_STREAM']!);
  return env;
}

interface OutboxRow {
  id: string;
  event_id: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  dead_at: Date | null;
  published_at: Date | null;
}

describe('a poison row', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let service: TestService;

  beforeAll(async () => {
    db = await database();
    env = envFor(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '20', OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_BACKOFF_BASE_MS: '500', OUTBOX_BACKOFF_MAX_MS: '2000' });
    service = await startTestService(env);
    cleanups.push(() => service.shutdown());
  });

  const row = async (eventId: string): Promise<OutboxRow> => db.knex('outbox').where({ event_id: eventId }).first();

  it('is retried with backoff, dead-lettered, reported, and holds back only its own aggregate', async () => {
    const poisonAggregate = randomUUID();
    const [poison] = (await insertOutboxRows(db.knex, 1, { aggregateId: poisonAggregate, eventType: POISON_TYPE })) as [string];
    const [behindPoison] = (await insertOutboxRows(db.knex, 1, { aggregateId: poisonAggregate })) as [string];
    const others = await insertOutboxRows(db.knex, 20);

    // Watch the row move through its attempts.
    const states: OutboxRow[] = [];
    await waitUntil(
      async () => {
        const current = await row(poison);
        if (states.at(-1)?.attempts !== current.attempts) states.push(current);
        return current.dead_at !== null;
      },
      60_000,
      'poison row not dead-lettered',
    );
    const attempts = states.map((state) => state.attempts);
    expect(attempts).toEqual([...attempts].sort((a, b) => a - b));
    const dead = states.at(-1)!;
    expect(dead.attempts).toBe(3);
    expect(dead.published_at).toBeNull();
    expect(dead.last_error).toContain(`no subject is known for event type ${POISON_TYPE}`);
    const retries = states.filter((state) => state.attempts > 0 && state.dead_at === null);
    expect(retries.length).toBeGreaterThan(0);
    for (const retry of retries) {
      expect(retry.last_error).toContain('no subject is known');
    }
    // Each retry waited out a later next_attempt_at than the one before.
    const scheduled = states.filter((state) => state.attempts > 0).map((state) => state.next_attempt_at.getTime());
    expect(scheduled).toEqual([...scheduled].sort((a, b) => a - b));
    expect(new Set(scheduled).size).toBe(scheduled.length);

    // The rows of other aggregates flowed; the one behind the poison waits for it.
    await waitUntil(async () => (await db.knex('outbox').whereIn('event_id', others).whereNull('published_at').count({ n: '*' }).first())?.n === '0', 30_000, 'other aggregates blocked');
    expect((await row(behindPoison)).published_at).toBeNull();
    expect((await row(behindPoison)).attempts).toBe(0);
    const published = (await readStream(NATS_URL, env['NATS_STREAM']!)).map((message) => message.headers['Nats-Msg-Id']);
    expect(new Set(published)).toEqual(new Set(others));

    // Reported: the CLI and the metrics.
    const stats = await runCli(['outbox', 'stats'], env);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ pending: 1, dead: 1 });
    const metrics = await (await fetch(`${service.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^outbox_dead_letters_total 1$/m);
    expect(metrics).toMatch(/^outbox_pending 1$/m);
    expect(metrics).toMatch(/^outbox_dead 1$/m); // the table's count, which every replica reports

    // Once the build knows its type, retry-dead puts it back: it goes out, then the one behind it.
    await db.knex('outbox').where({ event_id: poison }).update({ event_type: 'identity.v1.UserRegistered' });
    const retried = await runCli(['outbox', 'retry-dead'], env);
    expect(retried.code, retried.stderr).toBe(0);
    expect(JSON.parse(retried.stdout)).toEqual({ requeued: 1 });
    await waitUntil(async () => (await row(behindPoison)).published_at !== null, 30_000, 'requeued row and the one behind it not published');
    const order = (await readStream(NATS_URL, env['NATS_STREAM']!)).map((message) => message.headers['Nats-Msg-Id']);
    expect(order.slice(-2)).toEqual([poison, behindPoison]);
    expect(await row(poison)).toMatchObject({ dead_at: null, last_error: null });
    expect(JSON.parse((await runCli(['outbox', 'stats'], env)).stdout)).toMatchObject({ pending: 0, dead: 0 });
    await expect.poll(async () => (await (await fetch(`${service.adminUrl}/metrics`)).text()).match(/^outbox_dead (\d+)$/m)?.[1], { timeout: 5_000 }).toBe('0');
  });
});

describe('identity outbox flush', () => {
  it('exits 0 once everything is published, and non-zero when a row is left failing', async () => {
    const db = await database();
    const env = envFor(db);
    const eventIds = await insertOutboxRows(db.knex, 30);

    const ok = await runCli(['outbox', 'flush'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ published: 30, failed: 0, pending: 0, dead: 0 });
    const messages = await readStream(NATS_URL, env['NATS_STREAM']!);
    expect(new Set(messages.map((message) => message.headers['Nats-Msg-Id']))).toEqual(new Set(eventIds));

    const [poison] = (await insertOutboxRows(db.knex, 1, { eventType: POISON_TYPE })) as [string];
    const more = await insertOutboxRows(db.knex, 5);
    const failing = await runCli(['outbox', 'flush'], env);
    expect(failing.code).not.toBe(0);
    expect(failing.code).not.toBeNull();
    expect(JSON.parse(failing.stdout)).toMatchObject({ published: 5, failed: 1, pending: 1 });
    expect(await db.knex('outbox').where({ event_id: poison }).first()).toMatchObject({ attempts: 1, published_at: null });
    expect(await readStream(NATS_URL, env['NATS_STREAM']!)).toHaveLength(36 - 1);
    expect(await db.knex('outbox').whereIn('event_id', more).whereNull('published_at').count({ n: '*' }).first()).toEqual({ n: '0' });
  });
});
