/**
 * grpc.health.v1.Health as a load balancer, a kubelet gRPC probe or a grpc-js client sees it
 * (issue 7): Check and Watch for "" and identity.v1.IdentityService, NOT_SERVING when the
 * database goes away, and a Watch that hears the drain and ends when the server shuts down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, grpcHealthClient, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';

type HealthClient = ReturnType<typeof grpcHealthClient>;

const IDENTITY = 'identity.v1.IdentityService';

function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const options: grpc.CallOptions = { deadline: Date.now() + 10_000 };
    (client['Check'] as (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void).call(
      client,
      { service },
      new grpc.Metadata(),
      options,
      (error, response) => (error ? reject(error) : resolve(response.status)),
    );
  });
}

/** A Watch call that records every status it receives and how it ended. */
function watch(client: HealthClient, service: string) {
  const statuses: string[] = [];
  const call = (client['Watch'] as (req: object) => grpc.ClientReadableStream<{ status: string }>).call(client, { service });
  const waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  const notify = () => {
    for (const waiter of waiters.filter((w) => w.predicate())) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  let ended: grpc.StatusObject | undefined;
  const end = new Promise<grpc.StatusObject>((resolve) =>
    call.on('status', (status: grpc.StatusObject) => {
      ended = status;
      resolve(status);
      notify();
    }),
  );
  call.on('error', () => undefined); // the status event carries it
  call.on('data', (message: { status: string }) => {
    statuses.push(message.status);
    notify();
  });
  return {
    client,
    statuses,
    call,
    end,
    get ended() {
      return ended;
    },
    /** Resolves once `count` statuses have arrived; rejects after `timeoutMs`. */
    received(count: number, timeoutMs = 15_000): Promise<string[]> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${JSON.stringify(statuses)} after ${timeoutMs} ms`)), timeoutMs);
        const waiter = {
          predicate: () => statuses.length >= count || ended !== undefined,
          resolve: () => {
            clearTimeout(timer);
            if (statuses.length >= count) resolve(statuses.slice());
            else reject(new Error(`the stream ended (${ended?.code}) after ${JSON.stringify(statuses)}`));
          },
        };
        waiters.push(waiter);
        notify();
      });
    },
  };
}

/**
 * A Check on the Watch's own connection, sent once its first status arrived: had the server
 * ended the Watch after that status, the end was on the wire before this Check even reached
 * it, so it is seen first. What the tests wait for instead of a fixed pause.
 */
async function answeredAfter(watcher: ReturnType<typeof watch>): Promise<void> {
  expect(await check(watcher.client, '')).toBe('SERVING');
}

async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!accept(last)) {
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    last = await probe();
  }
  return last;
}

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let health: HealthClient;

beforeAll(async () => {
  db = await createTestDatabase();
  // One environment (and so one KEY_ENCRYPTION_KEY) for every instance on this database.
  env = testEnv(db);
  service = await startTestService(env);
  health = grpcHealthClient(service.url);
});

afterAll(async () => {
  health?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

describe('Health/Check through grpc-js', () => {
  it.each(['', IDENTITY])('answers SERVING for %j when the service is ready', async (name) => {
    expect(await check(health, name)).toBe('SERVING');
  });

  it('answers NOT_FOUND for a service it does not serve', async () => {
    const error = await grpcError(check(health, 'no.such.Service'));
    expect(error.code).toBe(grpc.status.NOT_FOUND);
  });

  it('agrees with /readyz', async () => {
    const response = await fetch(`${service.adminUrl}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ready: true, checks: { database: 'ok', signing_key: 'ok' } });
  });
});

describe('Health/Watch through grpc-js', () => {
  it('sends SERVING at once and keeps the stream open', async () => {
    const watcher = watch(health, IDENTITY);
    expect(await watcher.received(1)).toEqual(['SERVING']);
    await answeredAfter(watcher);
    expect(watcher.ended).toBeUndefined();
    watcher.call.cancel();
    expect((await watcher.end).code).toBe(grpc.status.CANCELLED);
  });

  it('sends SERVICE_UNKNOWN for an unknown service without ending the call, as health.proto asks', async () => {
    const watcher = watch(health, 'no.such.Service');
    expect(await watcher.received(1)).toEqual(['SERVICE_UNKNOWN']);
    await answeredAfter(watcher);
    expect(watcher.ended).toBeUndefined();
    watcher.call.cancel();
    await watcher.end;
  });
});

describe('an instance whose database becomes unreachable', () => {
  it('goes NOT_SERVING on Check, Watch and /readyz, answers RPCs with UNAVAILABLE, and recovers', async () => {
    // The instance reaches PostgreSQL through a TCP proxy the test can cut, as a network fault or a
    // stopped database would: open connections are reset and new ones refused.
    await using proxy = await tcpProxy(new URL(db.url));
    const instance = await startTestService({ ...env, DATABASE_URL: proxy.url(db.url) });
    const client = grpcHealthClient(instance.url);
    const identity = new GrpcIdentityClient(instance.url);
    try {
      expect(await check(client, '')).toBe('SERVING');
      const watcher = watch(client, '');
      expect(await watcher.received(1)).toEqual(['SERVING']);

      await proxy.cut();

      // The watcher hears it from the readiness monitor, without asking.
      expect(await watcher.received(2)).toEqual(['SERVING', 'NOT_SERVING']);
      expect(watcher.ended).toBeUndefined();
      expect(await eventually(() => check(client, ''), (status) => status === 'NOT_SERVING')).toBe('NOT_SERVING');
      expect(await check(client, IDENTITY)).toBe('NOT_SERVING');

      const readyz = await fetch(`${instance.adminUrl}/readyz`);
      expect(readyz.status).toBe(503);
      const report = (await readyz.json()) as { ready: boolean; checks: Record<string, string> };
      expect(report.ready).toBe(false);
      expect(report.checks['database']).not.toBe('ok');
      expect(report.checks['signing_key']).toBe('ok');
      // The process itself is alive.
      expect((await fetch(`${instance.adminUrl}/healthz`)).status).toBe(200);

      const failed = await grpcError(identity.authenticate({ email: 'ann@example.com', password: 'correct horse battery' }, { deadlineMs: 30_000 }));
      expect(failed.code).toBe(grpc.status.UNAVAILABLE);

      await proxy.restore();
      expect(await watcher.received(3)).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      expect(await eventually(() => check(client, IDENTITY), (status) => status === 'SERVING')).toBe('SERVING');
      expect((await fetch(`${instance.adminUrl}/readyz`)).status).toBe(200);

      watcher.call.cancel();
      await watcher.end;
    } finally {
      identity.close();
      client.close();
      await instance[Symbol.asyncDispose]();
    }
  });
});

describe('Watch during a graceful shutdown', () => {
  it('streams SERVING then NOT_SERVING, then ends with OK, and the shutdown is not held up', async () => {
    const instance = await startTestService({ ...env, SHUTDOWN_GRACE_SECONDS: '10' });
    const client = grpcHealthClient(instance.url);
    try {
      const watchers = [watch(client, ''), watch(client, IDENTITY)];
      for (const watcher of watchers) expect(await watcher.received(1)).toEqual(['SERVING']);

      const started = Date.now();
      const stopped = instance.shutdown();
      for (const watcher of watchers) {
        expect(await watcher.received(2)).toEqual(['SERVING', 'NOT_SERVING']);
        expect((await watcher.end).code).toBe(grpc.status.OK);
        expect(watcher.statuses).toEqual(['SERVING', 'NOT_SERVING']);
      }
      await stopped;
      // Open Watch streams must not keep the server waiting for the grace period.
      expect(Date.now() - started).toBeLessThan(5_000);

      const after = await grpcError(check(client, ''));
      expect(after.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      await instance.shutdown();
    }
  });
});
