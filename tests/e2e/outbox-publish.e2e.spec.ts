import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { nanos } from '@nats-io/transport-node';
import { StorageType } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it, inject, vi } from 'vitest';
import { UserRegisteredSchema } from '../../src/gen/identity/v1/events_pb.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { deleteStream, insertOutboxRows, readStream, streamInfo, waitForMessages, waitUntil, withNats } from '../helpers/nats.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';
import { startServerProcess } from '../helpers/process.js';

// Issue 4: the relay publishes every committed outbox row to JetStream, with the contract's headers.

// Processes, backlogs and NATS restarts are slow on a machine shared with other suites.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const NATS_URL = inject('natsUrl');
const PASSWORD = 'correct horse battery';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
const streams = new Set<string>();

/** An environment on this file's database with its own stream, remembered for cleanup. */
function relayEnv(extra: Record<string, string> = {}): Record<string, string> {
  const result = testEnv(db, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100', ...extra });
  // The signing keys in the database are sealed with the first instance's key.
  if (env !== undefined) result['KEY_ENCRYPTION_KEY'] = env['KEY_ENCRYPTION_KEY']!;
  streams.add(result['NATS_STREAM']!);
  return result;
}

beforeAll(async () => {
  db = await createTestDatabase();
  env = relayEnv();
  service = await startTestService(env);
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
  for (const stream of streams) await deleteStream(NATS_URL, stream);
});

const unpublished = async () => Number((await db.knex('outbox').whereNull('published_at').count({ n: '*' }).first())?.n);

describe('registrations reach the stream', () => {
  it('publishes exactly one message per registration, decoding to the right user, with the contract headers', async () => {
    const client = connectClient(service.url);
    const stream = env['NATS_STREAM']!;
    const before = (await streamInfo(NATS_URL, stream))?.state.messages ?? 0;
    const users = [];
    for (let i = 0; i < 25; i++) {
      const { user } = await client.registerUser({ email: `pub.${i}.${Date.now()}@example.com`, password: PASSWORD, firstName: `First${i}`, lastName: `Last${i}` });
      users.push(user!);
    }
    await waitUntil(async () => (await unpublished()) === 0, 60_000, 'outbox rows left unpublished');
    const messages = (await waitForMessages(NATS_URL, stream, before + 25)).slice(before);
    expect(messages).toHaveLength(25);

    const rows = await db.knex('outbox').whereIn('aggregate_id', users.map((user) => user.id));
    const eventIdByUser = new Map(rows.map((row) => [row.aggregate_id as string, row.event_id as string]));
    const seen = new Set<string>();
    for (const message of messages) {
      expect(message.subject).toBe(`${env['NATS_SUBJECT_PREFIX']}.user.registered`);
      const event = fromBinary(UserRegisteredSchema, message.data);
      const user = users.find((candidate) => candidate.id === event.userId);
      expect(user).toBeDefined();
      expect(event).toMatchObject({ email: user!.email, firstName: user!.firstName, lastName: user!.lastName, eventId: eventIdByUser.get(user!.id) });
      expect(Math.abs(timestampDate(event.occurredAt!).getTime() - Date.now())).toBeLessThan(120_000);
      expect(message.headers).toMatchObject({
        'Nats-Msg-Id': event.eventId,
        'ce-specversion': '1.0',
        'ce-id': event.eventId,
        'ce-type': 'identity.v1.UserRegistered',
        'ce-source': 'identity-service',
        'content-type': 'application/protobuf',
      });
      expect(message.headers['ce-time']).toMatch(RFC3339);
      seen.add(event.userId);
      // No secret travels: neither the password nor a bcrypt hash, in the payload or the headers.
      const everything = Buffer.from(message.data).toString('latin1') + JSON.stringify(message.headers);
      expect(everything).not.toContain(PASSWORD);
      expect(everything).not.toMatch(/\$2[aby]\$/);
    }
    expect(seen.size).toBe(25);
  });

  it('publishes a transaction that commits after later ids were published', async () => {
    const stream = env['NATS_STREAM']!;
    const trx = await db.knex.transaction();
    let lateEventId: string;
    try {
      [lateEventId] = (await insertOutboxRows(trx, 1)) as [string];
      const [lateId] = await trx('outbox').where({ event_id: lateEventId }).pluck('id');
      const laterEventIds = await insertOutboxRows(db.knex, 5);
      const laterIds = await db.knex('outbox').whereIn('event_id', laterEventIds).pluck('id');
      expect(laterIds.every((id) => BigInt(id) > BigInt(lateId))).toBe(true);
      await waitUntil(async () => (await db.knex('outbox').whereIn('event_id', laterEventIds).whereNull('published_at').count({ n: '*' }).first())?.n === '0', 30_000, 'later rows not published');
      await trx.commit();
    } catch (error) {
      await trx.rollback();
      throw error;
    }
    await waitUntil(async () => (await db.knex('outbox').where({ event_id: lateEventId }).first()).published_at !== null, 30_000, 'late row not published');
    const ids = (await readStream(NATS_URL, stream)).map((message) => message.headers['Nats-Msg-Id']);
    expect(ids.filter((id) => id === lateEventId)).toHaveLength(1);
  });
});

describe('waking the relay', () => {
  /**
   * An instance whose relay polls once a minute, resolved once that relay sleeps with every
   * start-up wake-up behind it: its first cycle, and the one the commit listener asks for when
   * it starts listening. Both say so in debug lines; the first "idle" after "listening" means
   * the relay is asleep and only a wake-up can make it publish within the minute.
   */
  async function sleepingRelay(own: TestDatabase) {
    const local = { ...testEnv(own, { OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '60000', LOG_LEVEL: 'debug' }) };
    streams.add(local['NATS_STREAM']!);
    const logs = captureLogs();
    const instance = await startTestService(local, { logDestination: logs.destination });
    const said = () => logs.lines.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    const asleep = () => {
      const listening = said().indexOf('outbox commit listener listening');
      return listening >= 0 && said().indexOf('outbox relay idle', listening + 1) > listening;
    };
    try {
      await waitUntil(async () => (await streamInfo(NATS_URL, local['NATS_STREAM']!)) !== undefined, 30_000, 'stream not provisioned');
      await waitUntil(() => Promise.resolve(asleep()), 30_000, 'the relay never went to sleep after the listener woke it');
    } catch (error) {
      await instance[Symbol.asyncDispose]();
      throw error;
    }
    return { instance, local };
  }

  it('publishes a registration right after its commit, not at the next poll', async () => {
    await using own = await createTestDatabase();
    const sleeping = await sleepingRelay(own);
    await using instance = sleeping.instance;
    const { local } = sleeping;
    const started = Date.now();
    const { user } = await connectClient(instance.url).registerUser({ email: `wake.${Date.now()}@example.com`, password: PASSWORD, firstName: 'Wake', lastName: 'Up' });
    const [message] = await waitForMessages(NATS_URL, local['NATS_STREAM']!, 1, 30_000);
    expect(fromBinary(UserRegisteredSchema, message!.data).userId).toBe(user!.id);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('publishes rows another process committed right away too (NOTIFY on commit), not at the next poll', async () => {
    await using own = await createTestDatabase();
    const sleeping = await sleepingRelay(own);
    await using _instance = sleeping.instance;
    const { local } = sleeping;
    // Written on another connection, as another replica or writer would: no in-process wake-up.
    const [eventId] = await insertOutboxRows(own.knex, 1);
    const [message] = await waitForMessages(NATS_URL, local['NATS_STREAM']!, 1, 30_000);
    expect(message!.headers['Nats-Msg-Id']).toBe(eventId);
  });
});

describe('stream provisioning', () => {
  it('creates a file stream with a duplicate window of at least 15 minutes, and is idempotent on restart', async () => {
    const stream = env['NATS_STREAM']!;
    const info = await streamInfo(NATS_URL, stream);
    expect(info?.config).toMatchObject({ storage: StorageType.File, subjects: [`${env['NATS_SUBJECT_PREFIX']}.>`] });
    expect(info!.config.duplicate_window).toBeGreaterThanOrEqual(nanos(15 * 60_000));
    const messages = info!.state.messages;

    // A second instance with the same settings finds the stream as it is: nothing lost, nothing changed.
    const again = await startTestService(env);
    await again.shutdown();
    const after = await streamInfo(NATS_URL, stream);
    expect(after?.state.messages).toBe(messages);
    expect(after?.config).toMatchObject({ storage: info!.config.storage, subjects: info!.config.subjects, duplicate_window: info!.config.duplicate_window });
    expect(after?.created).toBe(info!.created);
  });

  it('widens the duplicate window of an existing stream', async () => {
    const local = relayEnv();
    const stream = local['NATS_STREAM']!;
    await withNats(NATS_URL, (_nc, jsm) =>
      jsm.streams.add({ name: stream, subjects: [`${local['NATS_SUBJECT_PREFIX']}.>`], storage: StorageType.File, duplicate_window: nanos(60_000) }),
    );
    const instance = await startTestService(local);
    try {
      await waitUntil(async () => (await streamInfo(NATS_URL, stream))!.config.duplicate_window === nanos(1_200_000), 30_000, 'duplicate window not widened');
    } finally {
      await instance.shutdown();
    }
  });

  it('refuses to start on an existing memory stream, with a clear message', async () => {
    const local = relayEnv();
    const stream = local['NATS_STREAM']!;
    await withNats(NATS_URL, (_nc, jsm) =>
      jsm.streams.add({ name: stream, subjects: [`${local['NATS_SUBJECT_PREFIX']}.>`], storage: StorageType.Memory, duplicate_window: nanos(1_200_000) }),
    );
    const instance = await startTestService(local).then(
      async (started) => started.shutdown(),
      (error: unknown) => error,
    );
    expect(instance).toBeInstanceOf(Error);
    expect((instance as Error).message).toMatch(/stream .* storage is memory, not file/);
    // The same as a process: it exits non-zero and says why.
    const started: unknown = await startServerProcess(local, 30_000).then(
      async (process) => process[Symbol.asyncDispose](),
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(Error);
    expect((started as Error).message).toMatch(/exited \([1-9]\d*\) before starting: identity: JetStream stream \S+ exists with incompatible settings: storage is memory, not file/);
    expect((await streamInfo(NATS_URL, stream))?.config.storage).toBe(StorageType.Memory);
  });
});

describe('retention', () => {
  it('deletes only published rows older than OUTBOX_RETENTION_HOURS', async () => {
    await waitUntil(async () => (await unpublished()) === 0, 30_000, 'outbox not drained');
    const [oldPublished, recentPublished, oldDead] = await Promise.all([insertOutboxRows(db.knex, 3), insertOutboxRows(db.knex, 2), insertOutboxRows(db.knex, 1)]);
    await waitUntil(async () => (await unpublished()) === 0, 30_000, 'new rows not published');
    await db.knex('outbox').whereIn('event_id', oldPublished).update({ published_at: db.knex.raw(`now() - interval '2 hours'`), created_at: db.knex.raw(`now() - interval '2 hours'`) });
    await db.knex('outbox').whereIn('event_id', recentPublished).update({ published_at: db.knex.raw(`now() - interval '30 minutes'`) });
    // Never published, long dead: retention is about published rows only.
    await db.knex('outbox').whereIn('event_id', oldDead).update({ published_at: null, dead_at: db.knex.raw(`now() - interval '5 hours'`), created_at: db.knex.raw(`now() - interval '5 hours'`) });
    const total = Number((await db.knex('outbox').count({ n: '*' }).first())?.n);

    // Retention runs on the relay's first cycle.
    const instance = await startTestService({ ...env, OUTBOX_RETENTION_HOURS: '1' });
    try {
      await waitUntil(async () => (await db.knex('outbox').whereIn('event_id', oldPublished).count({ n: '*' }).first())?.n === '0', 30_000, 'old published rows not deleted');
    } finally {
      await instance.shutdown();
    }
    expect(await db.knex('outbox').whereIn('event_id', recentPublished).count({ n: '*' }).first()).toEqual({ n: '2' });
    expect(await db.knex('outbox').whereIn('event_id', oldDead).count({ n: '*' }).first()).toEqual({ n: '1' });
    expect(Number((await db.knex('outbox').count({ n: '*' }).first())?.n)).toBe(total - 3);
  });
});
