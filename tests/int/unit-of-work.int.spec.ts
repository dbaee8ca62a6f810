import { setTimeout as sleep } from 'node:timers/promises';
import { fromBinary } from '@bufbuild/protobuf';
import type { Knex } from 'knex';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { User } from '../../src/domain/identity/user.entity.js';
import type { Outbox } from '../../src/application/ports/outbox.port.js';
import type { PasswordHasher } from '../../src/application/ports/password-hasher.port.js';
import { Email, emailKey } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';
import { UserRegisteredSchema } from '../../src/gen/identity/v1/events_pb.js';
import { KnexUnitOfWork } from '../../src/infrastructure/db/knex-unit-of-work.js';
import type { OutboxWriter } from '../../src/infrastructure/outbox/outbox.writer.js';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

const PASSWORD = 'correct horse battery';
const HASH = '$2b$10$abcdefghijklmnopqrstuuJ0l7m1cN8Zq1o9O8y1Yx3QeV8cX1Wvi';

let counter = 0;
const uniqueEmail = (prefix: string) => `${prefix}.${Date.now()}.${++counter}@Example.com`;

function email(raw: string): Email {
  const parsed = Email.parse(raw);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function register(address: string) {
  const name = PersonName.parse('Ann');
  if (!name.ok) throw new Error(name.error);
  return User.register({ email: email(address), firstName: name.value, lastName: name.value, passwordHash: PasswordHash.fromTrusted(HASH) }, new Date());
}

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

async function usersWithEmail(address: string): Promise<{ id: string }[]> {
  return db.knex('users').where({ email_key: email(address).key }).select('id');
}

async function outboxRowsFor(userIds: readonly string[]): Promise<{ aggregate_id: string; payload: Uint8Array }[]> {
  return db.knex('outbox').whereIn('aggregate_id', userIds).select('aggregate_id', 'payload');
}

async function outboxRowsMentioning(address: string): Promise<number> {
  const rows: { payload: Uint8Array }[] = await db.knex('outbox').select('payload');
  return rows.filter((row) => emailKey(fromBinary(UserRegisteredSchema, row.payload).email) === email(address).key).length;
}

/** Outbox rows whose user does not exist: what a half-written registration would leave. */
async function orphanOutboxRows(): Promise<number> {
  const [row] = await db.knex('outbox as o').whereNotExists(db.knex('users as u').whereRaw('u.id = o.aggregate_id')).count<{ n: string }[]>({ n: '*' });
  return Number(row?.n);
}

async function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server never saw its deadline pass')), 10_000);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** Waits until no connection to the test database is inside an open transaction. */
async function transactionsSettled(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.knex.raw<{ rows: { n: string }[] }>(
      `select count(*) as n from pg_stat_activity where datname = ? and pid <> pg_backend_pid() and xact_start is not null`,
      [db.name],
    );
    if (Number(rows[0]?.n) === 0) return;
    await sleep(50);
  }
  throw new Error('a transaction stayed open on the test database');
}

describe('KnexUnitOfWork', () => {
  it('commits the user row and the outbox row together, and then tells the relay', async () => {
    let woken = 0;
    const uow = new KnexUnitOfWork(db.knex, { eventSource: 'test', onEventsCommitted: () => woken++ });
    const address = uniqueEmail('commit');
    const { user, event } = register(address);
    await uow.run(async (scope) => {
      await scope.users.save(user);
      await scope.outbox.add(event);
    });
    expect(await usersWithEmail(address)).toEqual([{ id: user.id.value }]);
    expect(await outboxRowsFor([user.id.value])).toHaveLength(1);
    expect(woken).toBe(1);
  });

  it('leaves neither row when the outbox insert fails after the user insert', async () => {
    let woken = 0;
    const failing = (_trx: Knex.Transaction, writer: OutboxWriter): Outbox => ({
      async add(event) {
        await writer.add(event); // the row is written inside the transaction ...
        throw new Error('outbox insert failed'); // ... and then the insert "fails"
      },
    });
    const uow = new KnexUnitOfWork(db.knex, { eventSource: 'test', outboxFor: failing, onEventsCommitted: () => woken++ });
    const address = uniqueEmail('outbox-fails');
    const { user, event } = register(address);
    await expect(
      uow.run(async (scope) => {
        await scope.users.save(user);
        await scope.outbox.add(event);
      }),
    ).rejects.toThrow('outbox insert failed');
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsFor([user.id.value])).toEqual([]);
    expect(woken).toBe(0);
  });

  it('leaves neither row when the outbox insert is refused by PostgreSQL', async () => {
    const broken = (trx: Knex.Transaction): Outbox => ({
      async add(event) {
        await trx('outbox').insert({ event_id: event.eventId, event_type: event.type, aggregate_id: event.aggregateId, payload: null });
      },
    });
    const uow = new KnexUnitOfWork(db.knex, { eventSource: 'test', outboxFor: broken });
    const address = uniqueEmail('outbox-refused');
    const { user, event } = register(address);
    const error = await uow
      .run(async (scope) => {
        await scope.users.save(user);
        await scope.outbox.add(event);
      })
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('23502'); // not_null_violation
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsFor([user.id.value])).toEqual([]);
  });

  it('rolls back when the signal is aborted after the writes but before the commit', async () => {
    let woken = 0;
    const uow = new KnexUnitOfWork(db.knex, { eventSource: 'test', onEventsCommitted: () => woken++ });
    const address = uniqueEmail('aborted');
    const { user, event } = register(address);
    const deadline = new AbortController();
    const error = await uow
      .run(async (scope) => {
        await scope.users.save(user);
        await scope.outbox.add(event);
        deadline.abort(new DOMException('the deadline passed', 'TimeoutError'));
        return 'done';
      }, deadline.signal)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('TimeoutError');
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsFor([user.id.value])).toEqual([]);
    expect(woken).toBe(0);
  });

  it('rolls back when AbortSignal.timeout fires while the work is still running', async () => {
    const uow = new KnexUnitOfWork(db.knex, { eventSource: 'test' });
    const address = uniqueEmail('timeout');
    const { user, event } = register(address);
    const deadline = AbortSignal.timeout(50);
    const error = await uow
      .run(async (scope) => {
        await scope.users.save(user);
        await scope.outbox.add(event);
        await aborted(deadline); // still working when the timeout fires
      }, deadline)
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('TimeoutError');
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsFor([user.id.value])).toEqual([]);
  });
});

describe('RegisterUser through the real server', () => {
  type Mode = 'ok' | 'throw-after-insert' | 'slow';
  let mode: Mode = 'ok';
  /** In 'slow' mode the outbox write holds the transaction open until the test releases it. */
  let hold: { reached: boolean; release: () => void; released: Promise<void>; done: Promise<void>; finish: () => void } | undefined;
  /** When set, every hash waits until `size` registrations are hashing, so all of them passed the existence check. */
  let barrier: { size: number; arrived: number; open: () => void; opened: Promise<void> } | undefined;
  /** The signal RegisterUser got for its last call: the one it hands to the unit of work too. */
  let lastSignal: AbortSignal | undefined;

  const logs = captureLogs();
  let service: TestService;
  let client: GrpcIdentityClient;

  const outboxFor = (_trx: Knex.Transaction, writer: OutboxWriter): Outbox => ({
    async add(event) {
      await writer.add(event);
      if (mode === 'throw-after-insert') throw new Error('outbox insert failed');
      if (mode === 'slow' && hold !== undefined) {
        hold.reached = true;
        await Promise.race([hold.released, sleep(15_000)]);
        hold.finish();
      }
    },
  });

  const wrapHasher = (inner: PasswordHasher): PasswordHasher => ({
    async hash(password, signal) {
      lastSignal = signal;
      const gate = barrier;
      if (gate !== undefined && ++gate.arrived >= gate.size) gate.open();
      if (gate !== undefined) await Promise.race([gate.opened, sleep(10_000)]);
      return inner.hash(password, signal);
    },
    verify: (password, hash, signal) => inner.verify(password, hash, signal),
    needsRehash: (hash) => inner.needsRehash(hash),
  });

  function armHold(): NonNullable<typeof hold> {
    let release!: () => void;
    let finish!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const done = new Promise<void>((resolve) => (finish = resolve));
    hold = { reached: false, release, released, done, finish };
    return hold;
  }

  function armBarrier(size: number): void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    barrier = { size, arrived: 0, open, opened };
  }

  beforeAll(async () => {
    service = await startTestService(testEnv(db, { LOG_LEVEL: 'info', HASH_WORKERS: '2' }), { outboxFor, wrapHasher, logDestination: logs.destination });
    client = new GrpcIdentityClient(service.url);
  });

  afterAll(async () => {
    client?.close();
    await service?.[Symbol.asyncDispose]();
  });

  afterEach(async () => {
    mode = 'ok';
    barrier = undefined;
    if (hold?.reached === true) {
      hold.release();
      await hold.done;
    }
    hold = undefined;
    await transactionsSettled();
    // Whatever a test did, no registration may leave an event without its user.
    expect(await orphanOutboxRows()).toBe(0);
  });

  const request = (address: string) => ({ email: address, password: PASSWORD, first_name: 'Ann', last_name: 'Lee' });

  it('answers INTERNAL and writes nothing when the outbox insert fails after the user insert; a retry then succeeds', async () => {
    const address = uniqueEmail('server-outbox-fails');
    mode = 'throw-after-insert';
    const error = await grpcError(client.registerUser(request(address)));
    expect(error.code).toBe(grpc.status.INTERNAL);
    expect(error.details).toBe('internal error'); // nothing internal leaks to the caller
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsMentioning(address)).toBe(0);
    // The cause is in the log for the operator, without the password.
    const failure = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line['msg'] === 'rpc failed');
    expect(JSON.stringify(failure)).toContain('outbox insert failed');
    expect(logs.text()).not.toContain(PASSWORD);

    // Nothing was half-written: the same email registers cleanly afterwards.
    mode = 'ok';
    const { user } = await client.registerUser(request(address));
    expect(await usersWithEmail(address)).toEqual([{ id: user.id }]);
    expect(await outboxRowsFor([user.id])).toHaveLength(1);
  });

  it('answers DEADLINE_EXCEEDED and rolls back when the deadline passes before the commit', async () => {
    const address = uniqueEmail('server-deadline');
    mode = 'slow';
    const held = armHold();
    const error = await grpcError(client.registerUser(request(address), { deadlineMs: 1_500 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The user and outbox rows were written and the transaction is still open. The caller's
    // timer fires a moment before the server's (which counts from the request's arrival):
    // wait for the server to see its deadline, then let the work finish and try to commit.
    expect(held.reached).toBe(true);
    await aborted(lastSignal!);
    held.release();
    await held.done;
    await transactionsSettled();
    expect(await usersWithEmail(address)).toEqual([]);
    expect(await outboxRowsMentioning(address)).toBe(0);

    mode = 'ok';
    await expect(client.registerUser(request(address))).resolves.toMatchObject({ user: { email: email(address).value } });
  });

  it('gives one OK and one ALREADY_EXISTS for two concurrent registrations of one email in different case', async () => {
    const address = uniqueEmail('Race');
    armBarrier(2); // both pass the existence check; the unique index decides
    const outcomes = await Promise.allSettled([client.registerUser(request(address)), client.registerUser(request(address.toUpperCase()))]);

    const ok = outcomes.filter((o) => o.status === 'fulfilled');
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => (o.reason as grpc.ServiceError).code);
    expect(ok).toHaveLength(1);
    expect(failed).toEqual([grpc.status.ALREADY_EXISTS]);

    const rows = await usersWithEmail(address);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id).toBe((ok[0] as PromiseFulfilledResult<Record<string, { id: string }>>).value['user']!.id);
    expect(await outboxRowsFor([rows[0]!.id])).toHaveLength(1);
    expect(await outboxRowsMentioning(address)).toBe(1);
  });

  it('gives exactly one OK among many concurrent registrations of one email, the rest ALREADY_EXISTS, never INTERNAL', async () => {
    const address = uniqueEmail('Stampede');
    const spellings = [address, address.toLowerCase(), address.toUpperCase(), `  ${address}  `];
    armBarrier(6);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => client.registerUser(request(spellings[i % spellings.length]!))));

    const codes = outcomes.map((o) => (o.status === 'fulfilled' ? grpc.status.OK : (o.reason as grpc.ServiceError).code));
    expect(codes.filter((code) => code === grpc.status.OK)).toHaveLength(1);
    expect(codes.filter((code) => code === grpc.status.ALREADY_EXISTS)).toHaveLength(5);

    const rows = await usersWithEmail(address);
    expect(rows).toHaveLength(1);
    expect(await outboxRowsFor([rows[0]!.id])).toHaveLength(1);
    expect(await outboxRowsMentioning(address)).toBe(1);
  });

  it('answers ALREADY_EXISTS from the existence check for an email registered earlier, without a new outbox row', async () => {
    const address = uniqueEmail('Taken');
    await client.registerUser(request(address));
    const error = await grpcError(client.registerUser(request(address.toLowerCase())));
    expect(error.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(await usersWithEmail(address)).toHaveLength(1);
    expect(await outboxRowsMentioning(address)).toBe(1);
  });
});
