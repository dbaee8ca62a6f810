import { Code, ConnectError } from '@connectrpc/connect';
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { migrateUp } from '../../src/infrastructure/db/migrator.js';
import { connectClient } from '../helpers/clients.js';
import { deleteStream, insertOutboxRows, readStream } from '../helpers/nats.js';
import { launchPostgres, type PrivatePostgres } from '../helpers/postgres-cluster.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { testEnv } from '../helpers/service.js';

// Issue 17: PostgreSQL restarts under load (a private cluster the test creates, stopped as a
// crash would). During the gap calls answer UNAVAILABLE within their deadline; afterwards the
// pool, the relay and the outbox LISTEN connection come back within seconds, and no committed
// event is lost.

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const PASSWORD = 'correct horse battery';
const DEADLINE_MS = 3_000;
/** "Within seconds": from PostgreSQL accepting connections again to a call that commits. */
const RECOVERY_BOUND_MS = 5_000;
const GAP_MS = 4_000;

let postgres: PrivatePostgres;
let knex: Knex;
let service: ServerProcess;
let env: Record<string, string>;

beforeAll(async () => {
  postgres = await launchPostgres();
  const url = await postgres.createDatabase('identity');
  // Silent: this pool's connections die with the restart, which is the point.
  const quiet = () => undefined;
  knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 2 }, log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } });
  await migrateUp(knex);
  // A 60 s poll: events written by another replica reach this relay only through LISTEN.
  env = testEnv({ url }, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '60000', LOG_LEVEL: 'info' });
  service = await startServerProcess(env);
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await knex?.destroy();
  await postgres?.[Symbol.asyncDispose]();
  if (env !== undefined) await deleteStream(env['NATS_URL']!, env['NATS_STREAM']!);
});

interface Outcome {
  readonly code: Code | 'ok';
  readonly ms: number;
  readonly at: number;
}

/** Calls `call` one after another until stopped, recording each outcome and how long it took. */
function loop(call: (i: number) => Promise<unknown>): { outcomes: Outcome[]; stop: () => Promise<void> } {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const running = (async () => {
    for (let i = 0; !stopped; i++) {
      const started = Date.now();
      const code = await call(i).then(
        () => 'ok' as const,
        (error: unknown) => ConnectError.from(error).code,
      );
      outcomes.push({ code, ms: Date.now() - started, at: Date.now() });
    }
  })();
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

const unpublished = async () => Number((await knex('outbox').whereNull('published_at').count({ n: '*' }).first())?.n);

describe('a PostgreSQL restart under load', () => {
  it('answers UNAVAILABLE within the deadline during the gap, recovers within seconds, and loses no event', async () => {
    const client = connectClient(service.apiUrl);
    await client.registerUser({ email: 'before@example.com', password: PASSWORD, firstName: 'Before', lastName: 'Restart' });
    const { accessToken } = await client.authenticate({ email: 'before@example.com', password: PASSWORD });

    const registrations = loop((i) =>
      client.registerUser({ email: `load.${i}@example.com`, password: PASSWORD, firstName: 'Load', lastName: `N${i}` }, { timeoutMs: DEADLINE_MS }),
    );
    const logins = loop(() => client.authenticate({ email: 'before@example.com', password: PASSWORD }, { timeoutMs: DEADLINE_MS }));
    const verifications = loop(() => client.verifyToken({ token: accessToken }, { timeoutMs: DEADLINE_MS }));
    const oks = (outcomes: Outcome[], after = 0) => outcomes.filter((o) => o.code === 'ok' && o.at > after).length;
    await vi.waitFor(() => expect(oks(registrations.outcomes)).toBeGreaterThanOrEqual(3), { timeout: 30_000 });

    await postgres.stop('immediate');
    const stoppedAt = Date.now();
    await vi.waitFor(
      () => {
        // A gap of some seconds, every call in it answered.
        const refused = [...registrations.outcomes, ...logins.outcomes].filter((o) => o.at > stoppedAt && o.code === Code.Unavailable);
        expect(refused.length).toBeGreaterThanOrEqual(5);
        expect(Math.max(...refused.map((o) => o.at)) - stoppedAt).toBeGreaterThanOrEqual(GAP_MS);
      },
      { timeout: 30_000, interval: 50 },
    );
    await postgres.start();
    const restartedAt = Date.now();
    await vi.waitFor(() => expect(oks(registrations.outcomes, restartedAt)).toBeGreaterThan(0), { timeout: 30_000, interval: 50 });
    await vi.waitFor(() => expect(oks(logins.outcomes, restartedAt)).toBeGreaterThan(0), { timeout: 30_000, interval: 50 });
    const recoveredMs = Math.max(
      ...[registrations.outcomes, logins.outcomes].map((outcomes) => outcomes.find((o) => o.code === 'ok' && o.at > restartedAt)!.at - restartedAt),
    );

    // Another replica's commit (a row written here, not through this process) reaches the
    // relay through LISTEN: with a 60 s poll, nothing else would wake it in time.
    const [foreign] = await insertOutboxRows(knex, 1);
    const insertedAt = Date.now();
    await vi.waitFor(async () => expect(await knex('outbox').where({ event_id: foreign }).whereNotNull('published_at').first()).toBeDefined(), {
      timeout: 15_000,
      interval: 50,
    });
    const foreignMs = Date.now() - insertedAt;
    await Promise.all([registrations.stop(), logins.stop(), verifications.stop()]);

    const all = [...registrations.outcomes, ...logins.outcomes, ...verifications.outcomes];
    // Nothing hangs past its deadline; failures are the expected ones only, never INTERNAL.
    expect(Math.max(...all.map((o) => o.ms))).toBeLessThan(DEADLINE_MS + 1_000);
    expect(new Set(all.filter((o) => o.code !== 'ok').map((o) => o.code))).toEqual(new Set([Code.Unavailable]));
    // VerifyToken needs no database: it kept answering through the gap.
    expect(verifications.outcomes.every((o) => o.code === 'ok')).toBe(true);
    expect(recoveredMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(foreignMs).toBeLessThan(RECOVERY_BOUND_MS);

    // Every committed user has its event, and every event is in the stream exactly once.
    await vi.waitFor(async () => expect(await unpublished()).toBe(0), { timeout: 30_000, interval: 200 });
    const users = Number((await knex('users').count({ n: '*' }).first())?.n);
    const eventIds: string[] = await knex('outbox').pluck('event_id');
    expect(eventIds).toHaveLength(users + 1); // the foreign row has no user behind it
    const msgIds = (await readStream(env['NATS_URL']!, env['NATS_STREAM']!)).map((message) => message.headers['Nats-Msg-Id']);
    expect(msgIds).toHaveLength(eventIds.length);
    expect(new Set(msgIds)).toEqual(new Set(eventIds));
    expect(oks(registrations.outcomes)).toBeLessThanOrEqual(users - 1);
    console.info(
      `postgres restart: ${all.filter((o) => o.code === Code.Unavailable).length} UNAVAILABLE answers, slowest call ${Math.max(...all.map((o) => o.ms))} ms, ` +
        `gap ${restartedAt - stoppedAt} ms, calls committing again ${recoveredMs} ms after PostgreSQL was back, ` +
        `another replica's event published ${foreignMs} ms after its commit, ${users} users / ${eventIds.length} events`,
    );
  });
});
