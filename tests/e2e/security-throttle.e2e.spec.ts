import { setTimeout as sleep } from 'node:timers/promises';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { connectClient, grpc, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';
import { countingHasher } from '../helpers/counting-hasher.js';

/**
 * Login throttling as replicas share it: counters in PostgreSQL, so failures spread over two
 * instances add up. Waiting is simulated by moving blocked_until / last_failure_at in the
 * database, except where a real second of waiting is the point.
 */

const { calls, wrap: countCalls } = countingHasher();

const MAX_DELAY = 8;
const WINDOW = 900;

let db: TestDatabase;
/** Two replicas: per-email limit 5, client limit out of the way, delay capped at 8 s. */
let replicaA: TestService;
let replicaB: TestService;
/** Client-address limit 3, client address from x-forwarded-for, walked past loopback and 10/8 proxies. */
let behindProxy: TestService;
/** Client-address limit 3, x-forwarded-for ignored. */
let noProxy: TestService;
const clients = new Map<TestService, GrpcIdentityClient>();

beforeAll(async () => {
  db = await createTestDatabase();
  const base = testEnv(db);
  // Every instance shares the database, hence the key encryption key.
  const env = (extra: Record<string, string>) => ({ ...testEnv(db, extra), KEY_ENCRYPTION_KEY: base['KEY_ENCRYPTION_KEY']! });
  const replicaEnv = env({ LOGIN_FREE_ATTEMPTS: '5', LOGIN_CLIENT_FREE_ATTEMPTS: '100000', LOGIN_MAX_DELAY_SECONDS: String(MAX_DELAY), LOGIN_WINDOW_SECONDS: String(WINDOW) });
  replicaA = await startTestService(replicaEnv, { wrapHasher: countCalls });
  replicaB = await startTestService(replicaEnv, { wrapHasher: countCalls });
  behindProxy = await startTestService(env({ LOGIN_FREE_ATTEMPTS: '100', LOGIN_CLIENT_FREE_ATTEMPTS: '3', TRUST_PROXY: 'true', TRUSTED_PROXIES: '127.0.0.0/8,10.0.0.0/8' }), { wrapHasher: countCalls });
  noProxy = await startTestService(env({ LOGIN_FREE_ATTEMPTS: '100', LOGIN_CLIENT_FREE_ATTEMPTS: '3', TRUST_PROXY: 'false' }), { wrapHasher: countCalls });
});

afterAll(async () => {
  for (const client of clients.values()) client.close();
  for (const service of [noProxy, behindProxy, replicaB, replicaA]) await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

beforeEach(async () => {
  // Every test starts with no counters (client counters would otherwise carry over).
  await db.knex('login_attempts').delete();
});

const grpcClient = (service: TestService) => {
  let client = clients.get(service);
  if (client === undefined) clients.set(service, (client = new GrpcIdentityClient(service.url)));
  return client;
};

let counter = 0;
const uniqueEmail = (prefix: string) => `${prefix}.${Date.now()}.${++counter}@example.com`;
const PASSWORD = 'throttle me not 42';
const WRONG = 'not the password 42';

async function registered(prefix: string): Promise<string> {
  const email = uniqueEmail(prefix);
  await connectClient(replicaA.url).registerUser({ email, password: PASSWORD, firstName: 'Thr', lastName: 'Ottle' });
  return email;
}

interface Outcome {
  readonly code: grpc.status;
  readonly message: string;
  /** google.rpc.RetryInfo's delay in seconds, when present. */
  readonly retrySeconds?: number;
  /** Hasher calls the attempt made. */
  readonly verified: number;
}

/** One Authenticate through grpc-js, reduced to what the tests compare. */
async function attempt(service: TestService, email: string, password: string, clientAddress?: string): Promise<Outcome> {
  const before = calls.verify;
  const metadata = clientAddress === undefined ? undefined : { 'x-forwarded-for': clientAddress };
  try {
    await grpcClient(service).authenticate({ email, password }, { metadata });
    return { code: grpc.status.OK, message: '', verified: calls.verify - before };
  } catch (e) {
    const error = e as grpc.ServiceError;
    const details = error.metadata.get('grpc-status-details-bin')[0] as Buffer | undefined;
    const retry = details === undefined ? undefined : retryInfoSeconds(details);
    return { code: error.code, message: error.details, verified: calls.verify - before, ...(retry !== undefined && { retrySeconds: retry }) };
  }
}

/** Reads google.rpc.RetryInfo out of a google.rpc.Status by hand (grpc-js leaves the details undecoded). */
function retryInfoSeconds(statusBytes: Uint8Array): number | undefined {
  const status = new BinaryReader(statusBytes);
  while (status.pos < status.len) {
    const [no, wireType] = status.tag();
    if (no !== 3) {
      status.skip(wireType);
      continue;
    }
    const any = new BinaryReader(status.bytes());
    let typeUrl = '';
    let value: Uint8Array = new Uint8Array();
    while (any.pos < any.len) {
      const [anyNo, anyWireType] = any.tag();
      if (anyNo === 1) typeUrl = any.string();
      else if (anyNo === 2) value = any.bytes();
      else any.skip(anyWireType);
    }
    if (typeUrl.endsWith('/google.rpc.RetryInfo')) return Number(fromBinary(RetryInfoSchema, value).retryDelay?.seconds ?? 0);
  }
  return undefined;
}

const unauthenticated = { code: grpc.status.UNAUTHENTICATED, message: 'invalid email or password', verified: 1 };
const throttled = (seconds: number) => ({ code: grpc.status.RESOURCE_EXHAUSTED, message: `too many failed attempts, retry in ${seconds} s`, retrySeconds: seconds, verified: 0 });

/** As if the current delay had passed: the next attempt is allowed, the count is kept. */
const endDelay = (key: string) => db.knex('login_attempts').where({ key }).update({ blocked_until: db.knex.raw("now() - interval '1 second'") });
const row = (key: string) => db.knex('login_attempts').where({ key }).first() as Promise<{ failures: number; blocked_until: Date | null; last_failure_at: Date } | undefined>;

describe('per email, shared by two replicas', () => {
  it('5 failures spread over both trip the limit: the 6th attempt is RESOURCE_EXHAUSTED even with the right password, without bcrypt', async () => {
    const email = await registered('spread');
    const replicas = [replicaA, replicaB, replicaA, replicaB, replicaA];
    for (const replica of replicas) expect(await attempt(replica, email, WRONG)).toEqual(unauthenticated);
    expect(await attempt(replicaB, email, PASSWORD)).toEqual(throttled(1));
    expect(await attempt(replicaA, email, PASSWORD)).toEqual(throttled(1));
    expect(await attempt(replicaA, email, WRONG)).toEqual(throttled(1));
  });

  it('the throttle answer carries google.rpc.RetryInfo for Connect clients too', async () => {
    const email = await registered('connect');
    for (let i = 0; i < 5; i++) await attempt(i % 2 === 0 ? replicaA : replicaB, email, WRONG);
    const error = await connectClient(replicaB.url)
      .authenticate({ email, password: PASSWORD })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(error?.rawMessage).toBe('too many failed attempts, retry in 1 s');
    expect(error?.findDetails(RetryInfoSchema).map((d) => Number(d.retryDelay?.seconds))).toEqual([1]);
  });

  it('the delay doubles with each further failure and stops at LOGIN_MAX_DELAY_SECONDS', async () => {
    const email = await registered('doubling');
    const key = `email:${email}`;
    for (let i = 0; i < 4; i++) expect(await attempt(replicaA, email, WRONG)).toEqual(unauthenticated);
    const delays: number[] = [];
    for (let failure = 5; failure <= 11; failure++) {
      await endDelay(key);
      expect(await attempt(failure % 2 === 0 ? replicaA : replicaB, email, WRONG)).toEqual(unauthenticated);
      const next = await attempt(failure % 2 === 0 ? replicaB : replicaA, email, PASSWORD);
      expect(next.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      delays.push(next.retrySeconds!);
      const stored = await row(key);
      expect(stored?.failures).toBe(failure);
      expect(Math.round((stored!.blocked_until!.getTime() - stored!.last_failure_at.getTime()) / 1000)).toBe(next.retrySeconds);
    }
    expect(delays).toEqual([1, 2, 4, MAX_DELAY, MAX_DELAY, MAX_DELAY, MAX_DELAY]);
  });

  it('throttled attempts do not call the hasher, are not counted and do not lengthen the delay', async () => {
    const email = await registered('spam');
    const key = `email:${email}`;
    for (let i = 0; i < 6; i++) {
      await endDelay(key);
      await attempt(replicaA, email, WRONG);
    }
    // A long block, so that the spam below surely falls inside it however slow the machine.
    await db.knex('login_attempts').where({ key }).update({ blocked_until: db.knex.raw("now() + interval '60 seconds'") });
    const before = { ...calls, row: await row(key) };
    for (let i = 0; i < 20; i++) {
      const outcome = await attempt(i % 2 === 0 ? replicaA : replicaB, email, i % 3 === 0 ? PASSWORD : WRONG);
      expect(outcome.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(outcome.retrySeconds).toBeLessThanOrEqual(60);
    }
    expect(calls).toEqual({ hash: before.hash, verify: before.verify });
    expect(await row(key)).toEqual(before.row);
  });

  it('after a real wait past the delay the right password is accepted, and that success resets the count', async () => {
    const email = await registered('wait');
    for (let i = 0; i < 5; i++) await attempt(i % 2 === 0 ? replicaA : replicaB, email, WRONG);
    expect(await attempt(replicaA, email, PASSWORD)).toEqual(throttled(1));
    await sleep(1_200);
    expect((await attempt(replicaB, email, PASSWORD)).code).toBe(grpc.status.OK);
    expect(await row(`email:${email}`)).toBeUndefined();
    // A fresh count: five failures are allowed again before the sixth attempt is held back.
    for (let i = 0; i < 5; i++) expect(await attempt(i % 2 === 0 ? replicaB : replicaA, email, WRONG)).toEqual(unauthenticated);
    expect(await attempt(replicaA, email, PASSWORD)).toEqual(throttled(1));
  });

  it('a success before the limit resets the count too', async () => {
    const email = await registered('reset');
    for (let i = 0; i < 4; i++) expect(await attempt(replicaA, email, WRONG)).toEqual(unauthenticated);
    expect((await attempt(replicaB, email, PASSWORD)).code).toBe(grpc.status.OK);
    for (let i = 0; i < 5; i++) expect(await attempt(replicaB, email, WRONG)).toEqual(unauthenticated);
    expect(await attempt(replicaA, email, PASSWORD)).toEqual(throttled(1));
  });

  it('counts per normalised email: case and surrounding spaces do not start a new count', async () => {
    const email = await registered('normalised');
    const variants = [email, email.toUpperCase(), `  ${email} `, email.replace('example.com', 'EXAMPLE.com'), `\t${email.toUpperCase()}`];
    for (const variant of variants) expect(await attempt(replicaA, variant, WRONG)).toEqual(unauthenticated);
    expect(await attempt(replicaB, email, PASSWORD)).toEqual(throttled(1));
  });

  it('unknown emails are throttled the same way (no difference an attacker could see)', async () => {
    const email = uniqueEmail('ghost');
    for (let i = 0; i < 5; i++) expect(await attempt(replicaA, email, WRONG)).toEqual(unauthenticated);
    expect(await attempt(replicaB, email, WRONG)).toEqual(throttled(1));
  });

  it('failures older than LOGIN_WINDOW_SECONDS are forgotten', async () => {
    const email = await registered('window');
    const key = `email:${email}`;
    for (let i = 0; i < 4; i++) await attempt(replicaA, email, WRONG);
    await db.knex('login_attempts').where({ key }).update({ last_failure_at: db.knex.raw('now() - make_interval(secs => ?)', [WINDOW + 5]) });
    for (let i = 0; i < 4; i++) expect(await attempt(replicaB, email, WRONG)).toEqual(unauthenticated);
    expect((await row(key))?.failures).toBe(4);
    expect((await attempt(replicaA, email, PASSWORD)).code).toBe(grpc.status.OK);
  });

  it('never locks for good: after 30 failures the delay is still the cap, and once it passes the right password works', async () => {
    const email = await registered('nolockout');
    const key = `email:${email}`;
    for (let i = 0; i < 30; i++) {
      await endDelay(key);
      expect(await attempt(i % 2 === 0 ? replicaA : replicaB, email, WRONG)).toEqual(unauthenticated);
    }
    expect(await attempt(replicaA, email, PASSWORD)).toEqual(throttled(MAX_DELAY));
    const stored = await row(key);
    expect(stored!.blocked_until!.getTime() - Date.now()).toBeLessThanOrEqual(MAX_DELAY * 1000 + 1000);
    await endDelay(key);
    expect((await attempt(replicaB, email, PASSWORD)).code).toBe(grpc.status.OK);
  });

  // Regression: the limit was checked before bcrypt and counted after it, so a burst of
  // concurrent guesses all passed the check. Now an attempt is counted in the same locked
  // step as the check, before the compare.
  it('a burst of concurrent wrong guesses over both replicas is held to LOGIN_FREE_ATTEMPTS compares', async () => {
    const email = await registered('burst');
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => attempt(i % 2 === 0 ? replicaA : replicaB, email, `${WRONG}${i}`)));
    const compared = outcomes.filter((outcome) => outcome.code === grpc.status.UNAUTHENTICATED).length;
    expect(compared).toBeLessThanOrEqual(5);
    expect(outcomes.filter((outcome) => outcome.code === grpc.status.RESOURCE_EXHAUSTED)).toHaveLength(12 - compared);
  });

  it('one email being throttled does not hold back another', async () => {
    const victim = await registered('victim');
    const bystander = await registered('bystander');
    for (let i = 0; i < 5; i++) await attempt(replicaA, victim, WRONG);
    expect((await attempt(replicaA, victim, PASSWORD)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await attempt(replicaA, bystander, PASSWORD)).code).toBe(grpc.status.OK);
  });
});

describe('per client address', () => {
  it('failures across different emails trip the client limit (LOGIN_CLIENT_FREE_ATTEMPTS=3)', async () => {
    const address = '203.0.113.7';
    const email = await registered('fromclient');
    for (let i = 0; i < 3; i++) expect(await attempt(behindProxy, uniqueEmail('scan'), WRONG, address)).toEqual(unauthenticated);
    // A real user with the right password, from that client, is held back without bcrypt...
    expect(await attempt(behindProxy, email, PASSWORD, address)).toEqual(throttled(1));
    // ...and gets in from another address.
    expect((await attempt(behindProxy, email, PASSWORD, '203.0.113.8')).code).toBe(grpc.status.OK);
    expect((await row(`client:${address}`))?.failures).toBe(3);
  });

  it('with TRUST_PROXY=true the client key is the first x-forwarded-for hop outside TRUSTED_PROXIES, from the right', async () => {
    const address = '198.51.100.23';
    const email = await registered('hop');
    for (let i = 0; i < 3; i++) await attempt(behindProxy, uniqueEmail('hop'), WRONG, `${address}, 10.0.0.${i + 1}`);
    expect(await row(`client:${address}`)).toMatchObject({ failures: 3 });
    expect(await attempt(behindProxy, email, PASSWORD, `${address},10.9.9.9`)).toEqual(throttled(1));
    // The later hops (the proxies) are not clients and were not counted.
    expect(await db.knex('login_attempts').where('key', 'like', 'client:10.%')).toEqual([]);
  });

  it('with TRUST_PROXY off the header is ignored: the peer address is the key, so changing it does not help', async () => {
    const email = await registered('spoof');
    for (let i = 0; i < 3; i++) expect(await attempt(noProxy, uniqueEmail('spoof'), WRONG, `192.0.2.${i + 1}`)).toEqual(unauthenticated);
    expect(await attempt(noProxy, email, PASSWORD, '192.0.2.200')).toEqual(throttled(1));
    const keys = (await db.knex('login_attempts').where('key', 'like', 'client:%').pluck('key')) as string[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^client:(::ffff:)?127\.0\.0\.1$/);
  });

  it('a success does not clear the client count (only the email count)', async () => {
    const address = '203.0.113.99';
    const email = await registered('clientsuccess');
    for (let i = 0; i < 2; i++) await attempt(behindProxy, uniqueEmail('other'), WRONG, address);
    expect((await attempt(behindProxy, email, PASSWORD, address)).code).toBe(grpc.status.OK);
    expect((await row(`client:${address}`))?.failures).toBe(2);
    expect(await attempt(behindProxy, uniqueEmail('other'), WRONG, address)).toEqual(unauthenticated);
    expect(await attempt(behindProxy, email, PASSWORD, address)).toEqual(throttled(1));
  });
});
