import { randomBytes } from 'node:crypto';
import { StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { launchNatsCluster, type NatsCluster } from '../helpers/nats-cluster.js';
import { insertOutboxRows, readStream, streamInfo, withNats } from '../helpers/nats.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { startTestService, testEnv } from '../helpers/service.js';
import { registerContinuously } from '../helpers/registration-load.js';

// Issue 17: a 3-node JetStream cluster the test starts on loopback, a stream with three
// replicas, service replicas on one database. The stream leader goes away and comes back, a
// replica dies mid-batch: every committed event is in the stream exactly once.

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const PASSWORD = 'correct horse battery';
/** The bound for a dead replica's claimed events, with the default 10 s lease. */
const TAKEOVER_BOUND_MS = 15_000;

let cluster: NatsCluster;
let db: TestDatabase;
const disposables: AsyncDisposable[] = [];
/** One database, so one key encryption key for every instance of the file. */
const KEY_ENCRYPTION_KEY = randomBytes(32).toString('base64');
const clusterEnv = (extra: Record<string, string>) => testEnv(db, { KEY_ENCRYPTION_KEY, ...extra });

beforeAll(async () => {
  cluster = await launchNatsCluster(3);
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
  await cluster?.[Symbol.asyncDispose]();
});

afterEach(async () => {
  for (const disposable of disposables.splice(0).reverse()) await disposable[Symbol.asyncDispose]();
  await Promise.all(cluster.nodes.map((node) => node.start()));
});

const count = async (query: PromiseLike<{ n: string | number }[]>) => Number((await query)[0]?.n);
const unpublished = () => count(db.knex('outbox').whereNull('published_at').count({ n: '*' }));

async function replica(env: Record<string, string>): Promise<ServerProcess> {
  const started = await startServerProcess(env);
  disposables.push(started);
  return started;
}

/** outbox_publish_errors_total{kind} of one replica. */
async function publishErrors(adminUrl: string, kind: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return Number(new RegExp(`^outbox_publish_errors_total\\{kind="${kind}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** Every outbox row is published, and the stream holds each event once: no msg id twice, none missing. */
async function expectExactlyOnce(stream: string): Promise<void> {
  await vi.waitFor(async () => expect(await unpublished()).toBe(0), { timeout: 90_000, interval: 200 });
  const eventIds: string[] = await db.knex('outbox').pluck('event_id');
  const msgIds = (await readStream(cluster.url, stream)).map((message) => message.headers['Nats-Msg-Id']);
  expect(new Set(msgIds).size).toBe(msgIds.length);
  expect(msgIds).toHaveLength(eventIds.length);
  expect(new Set(msgIds)).toEqual(new Set(eventIds));
  // Elections and a dead replica are NATS's and the process's faults, never the rows'.
  expect(await db.knex('outbox').max({ attempts: 'attempts' }).first()).toEqual({ attempts: 0 });
  expect(await count(db.knex('outbox').whereNotNull('dead_at').count({ n: '*' }))).toBe(0);
}

describe('two replicas on a 3-node JetStream cluster', () => {
  it('publishes every event once through a stream-leader restart and a replica killed mid-batch', async () => {
    const env = clusterEnv({ NATS_URL: cluster.url, NATS_STREAM_REPLICAS: '3', OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100', LOG_LEVEL: 'info' });
    const stream = env['NATS_STREAM']!;
    const [first, second] = await Promise.all([replica(env), replica(env)]);
    const info = await streamInfo(cluster.url, stream);
    expect(info?.config.num_replicas).toBe(3);
    expect(info?.cluster?.replicas).toHaveLength(2);

    // Stream leader stopped under load, then restarted.
    const loads = [registerContinuously(first.apiUrl, 'a', PASSWORD), registerContinuously(second.apiUrl, 'b', PASSWORD)];
    await vi.waitFor(async () => expect((await streamInfo(cluster.url, stream))?.state.messages).toBeGreaterThanOrEqual(4), { timeout: 30_000, interval: 100 });
    const leader = cluster.node(info!.cluster!.leader!);
    const before = (await streamInfo(cluster.url, stream))!.state.messages;
    // The leader goes while a backlog is being published; rows written after it went can only
    // land through the leader elected next.
    await insertOutboxRows(db.knex, 5_000);
    await vi.waitFor(async () => expect((await streamInfo(cluster.url, stream))?.state.messages).toBeGreaterThan(before + 200), { timeout: 30_000, interval: 20 });
    await leader.stop();
    await insertOutboxRows(db.knex, 1_000);
    await vi.waitFor(
      async () => {
        const now = await streamInfo(cluster.url, stream);
        expect(now?.cluster?.leader).not.toBe(leader.name);
        expect(now?.state.messages).toBeGreaterThanOrEqual(before + 6_000);
      },
      { timeout: 60_000, interval: 200 },
    );
    const transportErrors = await Promise.all([first, second].map((replica) => publishErrors(replica.adminUrl, 'transport')));
    // The election did meet publishes in flight (timeouts, no responders), and they were NATS's failures.
    expect(transportErrors.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
    await leader.start();
    await vi.waitFor(async () => expect((await streamInfo(cluster.url, stream))?.cluster?.replicas?.every((peer) => peer.current)).toBe(true), {
      timeout: 60_000,
      interval: 250,
    });
    expect(loads.map((load) => load.registered()).every((n) => n > 0)).toBe(true);
    await loads[0]!.stop();

    // A replica killed with SIGKILL while it holds claims; a new one starts in its place.
    await insertOutboxRows(db.knex, 20_000);
    const heldByFirst = db.knex('outbox').whereLike('locked_by', `%:${first.child.pid}:%`).whereNull('published_at');
    await vi.waitFor(async () => expect(await count(heldByFirst.clone().count({ n: '*' }))).toBeGreaterThan(0), { timeout: 60_000, interval: 10 });
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    const orphans: string[] = await heldByFirst.clone().pluck('id');
    expect(orphans.length).toBeGreaterThan(0);
    await replica(env); // a new replica in the dead one's place
    await vi.waitFor(
      async () => expect(await count(db.knex('outbox').whereIn('id', orphans).whereNull('published_at').count({ n: '*' }))).toBe(0),
      { timeout: TAKEOVER_BOUND_MS + 5_000, interval: 100 },
    );
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(TAKEOVER_BOUND_MS);

    await loads[1]!.stop();
    await expectExactlyOnce(stream);
    console.info(
      `cluster: publishes refused during the election ${transportErrors.join(' + ')} (transport, no attempt counted); ` +
        `${orphans.length} claims of the killed replica published ${takeoverMs} ms after the kill`,
    );
  });
});

describe('NATS_URL listing a node that is down', () => {
  for (const position of ['first', 'last'] as const) {
    it(`connects to the other nodes when the dead node is listed ${position}`, async () => {
      const base = clusterEnv({ NATS_STREAM_REPLICAS: '3', OUTBOX_RELAY: 'on', OUTBOX_POLL_MS: '100' });
      const stream = base['NATS_STREAM']!;
      // The R3 stream exists before the node goes: placing a new one needs all three.
      await withNats(cluster.url, (_nc, jsm) =>
        jsm.streams.add({ name: stream, subjects: [`${base['NATS_SUBJECT_PREFIX']}.>`], storage: StorageType.File, num_replicas: 3, duplicate_window: nanos(1_200_000) }),
      );
      const [down, ...up] = cluster.nodes;
      await down!.stop();
      const listed = position === 'first' ? [down!, ...up] : [...up, down!];
      const service = await startTestService({ ...base, NATS_URL: listed.map((node) => node.url).join(',') });
      disposables.push(service);
      const [eventId] = await insertOutboxRows(db.knex, 1);
      service.relay?.wake();
      await vi.waitFor(async () => expect(await count(db.knex('outbox').where({ event_id: eventId }).whereNotNull('published_at').count({ n: '*' }))).toBe(1), {
        timeout: 30_000,
        interval: 100,
      });
      // Reading makes a consumer, which waits out a meta-leader election when the stopped node led the cluster.
      const messages = await vi.waitFor(() => readStream(up.map((node) => node.url).join(','), stream, 5_000), { timeout: 30_000, interval: 500 });
      expect(messages.map((message) => message.headers['Nats-Msg-Id'])).toEqual([eventId]);
    });
  }
});

describe('stream settings on a cluster', () => {
  it('raises the replicas of an existing stream and sets its max age', async () => {
    const env = clusterEnv({ NATS_URL: cluster.url, NATS_STREAM_REPLICAS: '3', NATS_STREAM_MAX_AGE_SECONDS: '86400', OUTBOX_RELAY: 'on' });
    const stream = env['NATS_STREAM']!;
    await withNats(cluster.url, (_nc, jsm) =>
      jsm.streams.add({ name: stream, subjects: [`${env['NATS_SUBJECT_PREFIX']}.>`], storage: StorageType.File, num_replicas: 1, duplicate_window: nanos(1_200_000) }),
    );
    const service = await startTestService(env);
    disposables.push(service);
    await vi.waitFor(async () => expect((await streamInfo(cluster.url, stream))?.config).toMatchObject({ num_replicas: 3, max_age: nanos(86_400_000) }), {
      timeout: 30_000,
      interval: 200,
    });
  });

  it('keeps a higher replica count than configured', async () => {
    const env = clusterEnv({ NATS_URL: cluster.url, NATS_STREAM_REPLICAS: '1', OUTBOX_RELAY: 'on' });
    const stream = env['NATS_STREAM']!;
    await withNats(cluster.url, (_nc, jsm) =>
      jsm.streams.add({ name: stream, subjects: [`${env['NATS_SUBJECT_PREFIX']}.>`], storage: StorageType.File, num_replicas: 3, duplicate_window: nanos(1_200_000) }),
    );
    const service = await startTestService(env);
    disposables.push(service);
    // An event published proves provisioning is over.
    await insertOutboxRows(db.knex, 1);
    service.relay?.wake();
    await vi.waitFor(async () => expect(await unpublished()).toBe(0), { timeout: 30_000, interval: 100 });
    expect((await streamInfo(cluster.url, stream))?.config.num_replicas).toBe(3);
  });

  it('refuses to start asking for replicas of a server without a cluster, with a clear message', async () => {
    const env = clusterEnv({ NATS_URL: inject('natsUrl'), NATS_STREAM_REPLICAS: '3', OUTBOX_RELAY: 'on' });
    const started: unknown = await startTestService(env).then(
      async (service) => service.shutdown(),
      (error: unknown) => error,
    );
    expect((started as Error).message).toMatch(/JetStream stream \S+ cannot be created as configured: replicas > 1 not supported in non-clustered mode/);
  });

  it('refuses to start when another stream owns the subjects, with a clear message', async () => {
    const env = clusterEnv({ NATS_URL: cluster.url, NATS_STREAM_REPLICAS: '3', OUTBOX_RELAY: 'on' });
    await withNats(cluster.url, (_nc, jsm) => jsm.streams.add({ name: `${env['NATS_STREAM']}_OTHER`, subjects: [`${env['NATS_SUBJECT_PREFIX']}.>`] }));
    const started: unknown = await startTestService(env).then(
      async (service) => service.shutdown(),
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(Error);
    expect((started as Error).message).toMatch(/JetStream stream \S+ cannot be created as configured: subjects overlap with an existing stream/);
  });
});
