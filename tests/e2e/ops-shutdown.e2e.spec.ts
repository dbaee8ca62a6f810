/**
 * Graceful shutdown of `identity serve` as a process, signalled as Kubernetes does (issue 7):
 * SIGTERM with 20 slow RegisterUser calls in flight. Health goes NOT_SERVING, new connections
 * are refused, every in-flight call completes with OK and is written whole (user + outbox row),
 * the relay stops and NATS drains, and the process exits 0 within SHUTDOWN_GRACE_SECONDS.
 * A second signal more than a second later exits at once, still with nothing half-written.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { grpc, grpcError, grpcHealthClient, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { deleteStream, readStream } from '../helpers/nats.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { testEnv } from '../helpers/service.js';
import { DUPLICATE_SIGNAL_MS } from '../../src/app/serve.js';

const CALLS = 20;
const GRACE_SECONDS = 90;
const PASSWORD = 'correct horse battery';

type HealthClient = ReturnType<typeof grpcHealthClient>;

/** A Health/Watch call that records every status it receives and how it ended. */
function watch(client: HealthClient, service: string) {
  const statuses: string[] = [];
  const call = (client['Watch'] as (req: object) => grpc.ClientReadableStream<{ status: string }>).call(client, { service });
  const end = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined); // the status event carries it
  call.on('data', (message: { status: string }) => statuses.push(message.status));
  return {
    statuses,
    end,
    /** Resolves once `count` statuses have arrived. */
    async received(count: number, timeoutMs = 30_000): Promise<string[]> {
      const deadline = Date.now() + timeoutMs;
      while (statuses.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${JSON.stringify(statuses)} after ${timeoutMs} ms`);
        await sleep(20);
      }
      return statuses.slice();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a new TCP connection to the port is refused (nothing listens). */
function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolve(true) : reject(error)));
  });
}

async function startedRegistrations(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('grpc_server_started_total{grpc_type="unary",grpc_service="identity.v1.IdentityService",grpc_method="RegisterUser"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

interface Outcome {
  readonly code: grpc.status;
  readonly at: number;
}

/** Fires `CALLS` registrations on one HTTP/2 connection and waits until the server has started them all. */
async function registrationsInFlight(server: ServerProcess, client: GrpcIdentityClient, prefix: string) {
  const outcomes: Outcome[] = [];
  const calls = Array.from({ length: CALLS }, (_, i) =>
    client
      .registerUser({ email: `${prefix}.${i}@example.com`, password: PASSWORD, first_name: 'Drain', last_name: String(i) }, { deadlineMs: 300_000 })
      .then(
        () => outcomes.push({ code: grpc.status.OK, at: Date.now() }),
        (error: grpc.ServiceError) => outcomes.push({ code: error.code, at: Date.now() }),
      ),
  );
  const deadline = Date.now() + 60_000;
  while ((await startedRegistrations(server)) < CALLS) {
    if (Date.now() > deadline) throw new Error('the server did not start every call within 60 s');
    await sleep(20);
  }
  return { outcomes, all: Promise.all(calls).then(() => outcomes) };
}

/** Users written under `prefix`, and their outbox rows. */
async function written(db: TestDatabase, prefix: string) {
  const users = await db.knex('users').whereLike('email', `${prefix}.%`).select('id');
  const ids = users.map((u: { id: string }) => u.id);
  const outbox = ids.length === 0 ? [] : await db.knex('outbox').whereIn('aggregate_id', ids).select('aggregate_id', 'event_id', 'published_at');
  return { ids, outbox };
}

let db: TestDatabase;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, {
    LOG_LEVEL: 'info',
    // Slow hashes on two workers, a queue long enough for all of them: the calls wait in line.
    BCRYPT_COST: '13',
    HASH_WORKERS: '2',
    HASH_QUEUE_MAX: '64',
    REQUEST_TIMEOUT_SECONDS: '300',
    SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
    // The relay runs, so shutdown stops it and drains NATS as in production.
    OUTBOX_RELAY: 'true',
    OUTBOX_POLL_MS: '100',
  });
});

afterAll(async () => {
  if (env !== undefined) await deleteStream(env['NATS_URL']!, env['NATS_STREAM']!);
  await db?.[Symbol.asyncDispose]();
});

describe('SIGTERM with 20 slow calls in flight', () => {
  it('drains: NOT_SERVING, new connections refused, every call OK and written whole, exit 0 within the grace time', { timeout: 300_000 }, async () => {
    await using server = await startServerProcess(env);
    let stdout = '';
    server.child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const health = grpcHealthClient(server.apiUrl);
    const client = new GrpcIdentityClient(server.apiUrl);
    try {
      const watcher = watch(health, '');
      expect(await watcher.received(1)).toEqual(['SERVING']);

      const { outcomes, all } = await registrationsInFlight(server, client, 'drain');
      const finishedBeforeSignal = outcomes.length;
      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      // A copy of the signal within a second (npm or a terminal relaying it) is the same request.
      await sleep(100);
      server.child.kill('SIGTERM');

      // Health tells load balancers at once, and the listener is closed: new connections are refused.
      expect(await watcher.received(2)).toEqual(['SERVING', 'NOT_SERVING']);
      expect(await refused(server.apiUrl)).toBe(true);
      const readyz = await fetch(`${server.adminUrl}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toMatchObject({ ready: false, checks: { draining: 'draining' } });

      const results = await all;
      expect(results.map((o) => o.code)).toEqual(Array<number>(CALLS).fill(grpc.status.OK));
      // They were really in flight: most finished after the signal.
      expect(finishedBeforeSignal).toBeLessThan(CALLS / 2);
      expect(results.filter((o) => o.at >= signalledAt).length).toBeGreaterThan(CALLS / 2);

      const { code, signal } = await server.exited;
      const stoppedAfterMs = Date.now() - signalledAt;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(stoppedAfterMs).toBeLessThan(GRACE_SECONDS * 1000);
      expect((await watcher.end).code).toBe(grpc.status.OK);
      expect(watcher.statuses).toEqual(['SERVING', 'NOT_SERVING']);

      // Nothing half-written: exactly one user and one outbox row per call.
      const { ids, outbox } = await written(db, 'drain');
      expect(ids).toHaveLength(CALLS);
      expect(outbox).toHaveLength(CALLS);
      expect(new Set(outbox.map((row: { aggregate_id: string }) => row.aggregate_id))).toEqual(new Set(ids));
      // Whatever the relay published before it stopped is in the stream once; the rest waits in the outbox.
      const published = outbox.filter((row: { published_at: Date | null }) => row.published_at !== null);
      const messages = await readStream(env['NATS_URL']!, env['NATS_STREAM']!);
      const eventIds = messages.map((m) => m.headers['Nats-Msg-Id']);
      expect(new Set(eventIds).size).toBe(eventIds.length);
      expect(eventIds).toEqual(expect.arrayContaining(published.map((row: { event_id: string }) => row.event_id)));

      // Gone: both ports refuse connections, and a gRPC call fails as UNAVAILABLE.
      expect(await refused(server.apiUrl)).toBe(true);
      expect(await refused(server.adminUrl)).toBe(true);
      const after = await grpcError(new GrpcIdentityClient(server.apiUrl).verifyToken({ token: 'x' }, { deadlineMs: 5_000 }));
      expect(after.code).toBe(grpc.status.UNAVAILABLE);

      // The log tells the story, one JSON line each: nothing else reaches stdout.
      for (const line of stdout.split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
      const messagesLogged = server.logs.map((line) => line['msg']);
      expect(messagesLogged.filter((msg) => msg === 'shutting down')).toHaveLength(1);
      expect(messagesLogged.at(-1)).toBe('stopped');
      const rpcLines = server.logs.filter((line) => line['msg'] === 'rpc' && line['method'] === 'identity.v1.IdentityService/RegisterUser');
      expect(rpcLines.map((line) => line['code'])).toEqual(Array<string>(CALLS).fill('OK'));
      expect(JSON.stringify(server.logs)).not.toContain(PASSWORD);
    } finally {
      client.close();
      health.close();
    }
  });
});

describe('calls still running when the grace time runs out', () => {
  it('are cut, the process still exits 0 in about the grace time, and nothing is half-written', { timeout: 300_000 }, async () => {
    const graceSeconds = 3;
    await using server = await startServerProcess({ ...env, SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
    const client = new GrpcIdentityClient(server.apiUrl);
    try {
      const { all } = await registrationsInFlight(server, client, 'cut');
      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      const { code, signal } = await server.exited;
      const stoppedAfterMs = Date.now() - signalledAt;
      const results = await all;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      // Calls get the grace time less the second their answers need to get out.
      expect(stoppedAfterMs).toBeGreaterThanOrEqual((graceSeconds - 1) * 1000 - 100);
      expect(stoppedAfterMs).toBeLessThan(graceSeconds * 1000 + 10_000);
      // What did not finish is answered UNAVAILABLE (retry elsewhere), never INTERNAL or a bare reset.
      expect(results.every((o) => o.code === grpc.status.OK || o.code === grpc.status.UNAVAILABLE)).toBe(true);
      expect(results.some((o) => o.code === grpc.status.UNAVAILABLE)).toBe(true);
      expect(server.logs.filter((line) => line['msg'] === 'rpc' && line['code'] === 'Unavailable').length).toBeGreaterThan(0);

      const { ids, outbox } = await written(db, 'cut');
      expect(outbox).toHaveLength(ids.length);
      expect(new Set(outbox.map((row: { aggregate_id: string }) => row.aggregate_id))).toEqual(new Set(ids));
      expect(ids.length).toBeGreaterThanOrEqual(results.filter((o) => o.code === grpc.status.OK).length);
    } finally {
      client.close();
    }
  });
});

describe('a second SIGTERM more than a second later', () => {
  it('exits at once with a non-zero code, leaving nothing half-written', { timeout: 300_000 }, async () => {
    await using server = await startServerProcess(env);
    const client = new GrpcIdentityClient(server.apiUrl);
    try {
      const { outcomes, all } = await registrationsInFlight(server, client, 'abort');
      const firstAt = Date.now();
      server.child.kill('SIGTERM');
      // The drain is under way, and the copy window is over: this is a second request to stop.
      await vi.waitFor(() => expect(server.logs.some((line) => line['msg'] === 'shutting down')).toBe(true), { timeout: 10_000, interval: 20 });
      await sleep(Math.max(0, firstAt + DUPLICATE_SIGNAL_MS + 100 - Date.now()));
      const finishedBeforeSecond = outcomes.length;
      const secondAt = Date.now();
      server.child.kill('SIGTERM');

      const { code, signal } = await server.exited;
      const exitedAfterMs = Date.now() - secondAt;
      expect(signal).toBeNull();
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      // At once: no waiting for the calls (only for a bcrypt round already running in a worker,
      // which Node cannot interrupt; a fraction of a second at production cost on an idle machine).
      expect(exitedAfterMs).toBeLessThan(10_000);
      // The second signal really cut calls short.
      expect(finishedBeforeSecond).toBeLessThan(CALLS);

      const results = await all;
      // Callers see either their answer or a transport failure, never a wrong answer.
      expect(results.every((o) => o.code === grpc.status.OK || o.code === grpc.status.UNAVAILABLE)).toBe(true);
      expect(results.some((o) => o.code !== grpc.status.OK)).toBe(true);
      expect(server.logs.some((line) => line['msg'] === 'second signal: exiting now')).toBe(true);

      // Each user that was committed has its outbox row, and no outbox row lacks its user.
      const { ids, outbox } = await written(db, 'abort');
      expect(outbox).toHaveLength(ids.length);
      expect(new Set(outbox.map((row: { aggregate_id: string }) => row.aggregate_id))).toEqual(new Set(ids));
      expect(ids.length).toBeGreaterThanOrEqual(results.filter((o) => o.code === grpc.status.OK).length);
      expect(await refused(server.apiUrl)).toBe(true);
    } finally {
      client.close();
    }
  });
});
