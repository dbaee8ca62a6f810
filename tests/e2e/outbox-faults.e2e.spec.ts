import { rm } from 'node:fs/promises';
import { fromBinary } from '@bufbuild/protobuf';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserRegisteredSchema } from '../../src/gen/identity/v1/events_pb.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { insertOutboxRows, launchNatsServer, readStream, streamMessageCount, waitUntil, type NatsServer, type StreamMessage, withNats } from '../helpers/nats.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';
import { registerContinuously } from '../helpers/registration-load.js';

// Issue 4: NATS going away (or never there) and the relay dying mid-batch lose no event and
// publish none twice. Each test runs its own nats-server and database.

// Processes, backlogs and NATS restarts are slow on a machine shared with other suites.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const PASSWORD = 'correct horse battery';

let nats: NatsServer;
let db: TestDatabase;
const disposables: AsyncDisposable[] = [];

beforeAll(async () => {
  nats = await launchNatsServer();
});

afterAll(async () => {
  await nats?.[Symbol.asyncDispose]();
});

afterEach(async () => {
  for (const disposable of disposables.splice(0).reverse()) await disposable[Symbol.asyncDispose]();
});

async function freshDatabase(): Promise<TestDatabase> {
  db = await createTestDatabase();
  disposables.push(db);
  return db;
}

async function relayService(extra: Record<string, string> = {}) {
  const env = testEnv(db, { NATS_URL: nats.url, OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100', ...extra });
  // Warnings are kept: what the service says about NATS is what these tests wait for.
  const logs = captureLogs();
  const service = await startTestService({ ...env, LOG_LEVEL: 'warn' }, { logDestination: logs.destination });
  disposables.push(service);
  /** Resolves once the service has logged `message` (its NATS connection going away, say). */
  const logged = (message: string) =>
    waitUntil(() => Promise.resolve(logs.lines.some((line) => (JSON.parse(line) as { msg?: string }).msg === message)), 30_000, `never logged "${message}"`);
  return { service, env, logged };
}

const NATS_LOST = 'disconnected from NATS; reconnecting';

/** outbox_publish_errors_total over both kinds: each publish the relay tried that failed. */
async function publishErrors(service: TestService): Promise<number> {
  const { values } = await service.metrics.outboxPublishErrors.get();
  return values.reduce((sum, { value }) => sum + value, 0);
}

const count = async (query: (knex: TestDatabase['knex']) => PromiseLike<{ n: string | number }[]>) => Number((await query(db.knex))[0]?.n);
const publishedRows = () => count((knex) => knex('outbox').whereNotNull('published_at').count({ n: '*' }));
const allRows = () => count((knex) => knex('outbox').count({ n: '*' }));

/** Every committed event is in the stream exactly once: one message per row, no msg id twice. */
async function expectExactlyOnce(stream: string): Promise<StreamMessage[]> {
  await waitUntil(async () => (await publishedRows()) === (await allRows()), 90_000, async () => `published ${await publishedRows()} of ${await allRows()}`);
  const eventIds: string[] = await db.knex('outbox').orderBy('id').pluck('event_id');
  const messages = await readStream(nats.url, stream);
  const msgIds = messages.map((message) => message.headers['Nats-Msg-Id']);
  expect(new Set(msgIds).size).toBe(msgIds.length);
  expect(messages).toHaveLength(eventIds.length);
  expect(new Set(msgIds)).toEqual(new Set(eventIds));
  return messages;
}

describe('NATS going away', () => {
  it('keeps the API answering while NATS is down, then publishes everything once when it is back', async () => {
    await freshDatabase();
    const { service, env, logged } = await relayService();
    const stream = env['NATS_STREAM']!;
    const load = registerContinuously(service.url, 'down', PASSWORD);
    await waitUntil(async () => (await streamMessageCount(nats.url, stream)) >= 5, 30_000, 'first events not published');

    await nats.stop('SIGKILL');
    await logged(NATS_LOST);
    const beforeOutage = load.registered();
    await waitUntil(() => Promise.resolve(load.registered() >= beforeOutage + 10), 30_000, 'registrations stalled while NATS was down');
    // Each of those ten commits woke the relay (a local commit does) after it knew NATS was
    // gone: it has had its chances to try. Transport failures leave the rows pending, not failed.
    expect(await db.knex('outbox').whereNull('published_at').count({ n: '*' }).first()).not.toEqual({ n: '0' });
    expect(await db.knex('outbox').where('attempts', '>', 0).orWhereNotNull('dead_at').count({ n: '*' }).first()).toEqual({ n: '0' });
    await nats.start();

    await waitUntil(async () => (await streamMessageCount(nats.url, stream)) >= beforeOutage + 10, 30_000, 'events not published after NATS came back');
    const total = await load.stop();
    expect(total).toBeGreaterThanOrEqual(beforeOutage + 10);
    const messages = await expectExactlyOnce(stream);
    expect(messages).toHaveLength(total);
    const users = new Set(messages.map((message) => fromBinary(UserRegisteredSchema, message.data).userId));
    expect(users.size).toBe(total);
    expect(await db.knex('outbox').max({ attempts: 'attempts' }).first()).toEqual({ attempts: 0 });
    expect(await db.knex('outbox').whereNotNull('dead_at').count({ n: '*' }).first()).toEqual({ n: '0' });
  });

  it('starts and serves with NATS unreachable, and publishes the backlog once NATS is there', async () => {
    await freshDatabase();
    await nats.stop();
    const { service, env, logged } = await relayService();
    await logged('NATS is unreachable; events wait in the outbox until it is back');
    const client = connectClient(service.url);
    // Each commit wakes the relay: five chances to publish, none of which may mark a row published.
    for (let i = 0; i < 5; i++) await client.registerUser({ email: `early.${i}.${Date.now()}@example.com`, password: PASSWORD, firstName: 'Early', lastName: 'Bird' });
    expect(await publishedRows()).toBe(0);
    await nats.start();
    const messages = await expectExactlyOnce(env['NATS_STREAM']!);
    expect(messages).toHaveLength(5);
  });

  it('publishes a large backlog exactly once through a NATS crash mid-publish, counting no attempt against the rows', async () => {
    await freshDatabase();
    await insertOutboxRows(db.knex, 3_000);
    const { env, logged } = await relayService({ OUTBOX_BATCH_SIZE: '200' });
    const stream = env['NATS_STREAM']!;
    await waitUntil(async () => (await streamMessageCount(nats.url, stream)) >= 500, 60_000, 'relay did not start publishing');
    await nats.stop('SIGKILL');
    // NATS comes back only once the service has seen it go, so the crash is one it lived through.
    await logged(NATS_LOST);
    await nats.start();
    await expectExactlyOnce(stream);
    expect(await db.knex('outbox').max({ attempts: 'attempts' }).first()).toEqual({ attempts: 0 });
  });

  it('recreates the stream when NATS comes back without its store', async () => {
    await freshDatabase();
    const { service, env } = await relayService();
    const stream = env['NATS_STREAM']!;
    const client = connectClient(service.url);
    await client.registerUser({ email: `before.${Date.now()}@example.com`, password: PASSWORD, firstName: 'A', lastName: 'B' });
    await waitUntil(async () => (await streamMessageCount(nats.url, stream)) === 1, 30_000, 'first event not published');

    await nats.stop();
    await rm(nats.storeDir, { recursive: true, force: true });
    await nats.start();
    for (let i = 0; i < 3; i++) await client.registerUser({ email: `after.${i}.${Date.now()}@example.com`, password: PASSWORD, firstName: 'A', lastName: 'B' });

    await waitUntil(async () => (await publishedRows()) === 4, 60_000, async () => `published ${await publishedRows()} of 4`);
    // The first event went down with the old store; the three after the loss are there, once each.
    expect(await readStream(nats.url, stream)).toHaveLength(3);
    expect(await db.knex('outbox').max({ attempts: 'attempts' }).first()).toEqual({ attempts: 0 });
  });
});

describe('the stream deleted under a running relay', () => {
  it('keeps the events pending without counting attempts, and publishes them once the stream is back', async () => {
    await freshDatabase();
    const extra = { OUTBOX_MAX_ATTEMPTS: '2', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '50' };
    const { service, env } = await relayService(extra);
    const stream = env['NATS_STREAM']!;
    await insertOutboxRows(db.knex, 1);
    await waitUntil(async () => (await publishedRows()) === 1, 30_000, 'first event not published');

    await withNats(nats.url, (_nc, jsm) => jsm.streams.delete(stream));
    const errorsBefore = await publishErrors(service);
    await insertOutboxRows(db.knex, 3);
    service.relay?.wake();
    // Nobody listens on the subject: NATS's problem, not the rows'. Without a stream the relay
    // must neither count attempts nor dead-letter (OUTBOX_MAX_ATTEMPTS is 2 here): wait until
    // each of the three rows has failed twice, enough to dead-letter them were attempts counted.
    await expect.poll(async () => (await publishErrors(service)) - errorsBefore, { timeout: 30_000 }).toBeGreaterThanOrEqual(6);
    expect(await db.knex('outbox').whereNull('published_at').select('attempts', 'dead_at')).toEqual([
      { attempts: 0, dead_at: null },
      { attempts: 0, dead_at: null },
      { attempts: 0, dead_at: null },
    ]);

    // A new instance provisions the stream again at start and drains what waited.
    await service.shutdown();
    const restarted = await startTestService({ ...env });
    disposables.push(restarted);
    await waitUntil(async () => (await publishedRows()) === 4, 30_000, 'waiting events not published');
    expect(await readStream(nats.url, stream)).toHaveLength(3);
  });
});

describe('the relay process killed with SIGKILL', () => {
  it('between publish and mark: after a restart no event is missing and none is in the stream twice', async () => {
    await freshDatabase();
    const ROWS = 4_000;
    await insertOutboxRows(db.knex, ROWS);
    const env = testEnv(db, { NATS_URL: nats.url, OUTBOX_RELAY: 'on', OUTBOX_BATCH_SIZE: '500', OUTBOX_LEASE_SECONDS: '5', LOG_LEVEL: 'info' });
    const stream = env['NATS_STREAM']!;
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const messagesNow = async () => (await jsm.streams.info(stream).catch(() => undefined))?.state.messages ?? 0;
    let provenBetween = false;
    try {
      for (let attempt = 0; attempt < 5 && !provenBetween; attempt++) {
        const relay: ServerProcess = await startServerProcess(env);
        disposables.push(relay);
        const before = await messagesNow();
        // Kill as soon as this process has published something, while it is publishing.
        await waitUntil(async () => (await messagesNow()) > before, 60_000, 'relay process published nothing');
        relay.child.kill('SIGKILL');
        await relay.exited;
        const [inStream, marked] = [await messagesNow(), await publishedRows()];
        provenBetween = inStream > marked;
        if (marked === ROWS) break;
      }
    } finally {
      await nc.close();
    }
    expect(provenBetween, 'the kill never landed between a publish and its mark').toBe(true);
    expect(await publishedRows()).toBeLessThan(ROWS);

    // A fresh relay takes the dead one's rows over once their lease runs out, and republishes
    // the ones already in the stream under the same msg id: JetStream drops those copies.
    const restarted = await startServerProcess(env);
    disposables.push(restarted);
    await expectExactlyOnce(stream);
  });
});

describe('the relay process stopped with SIGTERM', () => {
  it('finishes the batch in flight, marks it, and gives back its claims', async () => {
    await freshDatabase();
    const ROWS = 5_000;
    await insertOutboxRows(db.knex, ROWS);
    // One publish in flight, so that the backlog takes seconds and SIGTERM lands inside it (at 64
    // in flight 2,000 rows were once all published before the signal); a grace period long
    // enough for a 500-row batch on a loaded machine.
    const env = testEnv(db, {
      NATS_URL: nats.url,
      OUTBOX_RELAY: 'on',
      OUTBOX_BATCH_SIZE: '500',
      OUTBOX_MAX_IN_FLIGHT: '1',
      OUTBOX_LEASE_SECONDS: '600',
      SHUTDOWN_GRACE_SECONDS: '30',
    });
    const stream = env['NATS_STREAM']!;
    const relay = await startServerProcess(env);
    disposables.push(relay);
    await waitUntil(async () => (await streamMessageCount(nats.url, stream)) > 0, 60_000, 'relay process published nothing');
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toEqual({ code: 0, signal: null });

    const marked = await publishedRows();
    expect(marked, 'SIGTERM came after the whole backlog was published: no batch was in flight').toBeLessThan(ROWS);
    // Everything it published it also marked, and no row stays leased to the stopped relay
    // (its lease is 10 minutes: only the release lets another relay take them now).
    expect(await streamMessageCount(nats.url, stream)).toBe(marked);
    expect(await db.knex('outbox').whereNotNull('locked_by').count({ n: '*' }).first()).toEqual({ n: '0' });
    const next = await startServerProcess(env);
    disposables.push(next);
    await expectExactlyOnce(stream);
  });
});
