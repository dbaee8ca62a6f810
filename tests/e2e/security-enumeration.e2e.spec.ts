import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectClient, grpc, grpcError, GrpcIdentityClient, type Protocol } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';
import { countingHasher } from '../helpers/counting-hasher.js';

/**
 * Account enumeration: an unknown email, a wrong password and a disabled user must be the
 * same to the caller (status, message, details byte for byte) and take the same path on the
 * server (exactly one bcrypt comparison, no hashing). The calls are counted, not timed.
 */

const { calls, wrap: countCalls } = countingHasher();

let db: TestDatabase;
let service: TestService;
let grpcClient: GrpcIdentityClient;

const PASSWORD = 'enumeration resistant 1';
const ACTIVE = 'Active.User@example.com';
const DISABLED = 'disabled.user@example.com';
const UNKNOWN = 'nobody.here@example.com';

beforeAll(async () => {
  db = await createTestDatabase();
  // Throttling stays on (its failure counting is part of the path) but far from its limits.
  service = await startTestService(testEnv(db, { LOGIN_FREE_ATTEMPTS: '1000', LOGIN_CLIENT_FREE_ATTEMPTS: '100000' }), { wrapHasher: countCalls });
  grpcClient = new GrpcIdentityClient(service.url);
  for (const email of [ACTIVE, DISABLED]) {
    await grpcClient.registerUser({ email, password: PASSWORD, first_name: 'Enu', last_name: 'Meration' });
  }
  const updated = await db.knex('users').where({ email_key: DISABLED.toLowerCase() }).update({ status: 'disabled' });
  expect(updated).toBe(1);
});

afterAll(async () => {
  grpcClient?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

beforeEach(() => {
  calls.hash = 0;
  calls.verify = 0;
});

/** What a grpc-js caller can observe of a failure, as bytes. */
async function grpcFailure(request: { email: string; password: string }) {
  const before = { ...calls };
  const error = await grpcError(grpcClient.authenticate(request));
  const details = error.metadata.get('grpc-status-details-bin');
  return {
    code: error.code,
    message: Buffer.from(error.details, 'utf8').toString('hex'),
    details: details.map((value) => Buffer.from(value as Buffer).toString('hex')),
    hasherCalls: { hash: calls.hash - before.hash, verify: calls.verify - before.verify },
  };
}

async function connectFailure(protocol: Protocol, request: { email: string; password: string }) {
  const error = await connectClient(service.url, protocol)
    .authenticate(request)
    .then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
  expect(error).toBeInstanceOf(ConnectError);
  return {
    code: error!.code,
    message: error!.rawMessage,
    details: error!.details.map((d) => ('desc' in d ? d.desc.typeName : `${d.type}:${Buffer.from(d.value).toString('hex')}`)),
  };
}

describe('unknown email, wrong password, disabled user', () => {
  it('the user fixtures are what the cases need', async () => {
    // The disabled user's password is right: only its status refuses it.
    const rows = await db.knex('users').select('email_key', 'status').orderBy('email_key');
    expect(rows).toEqual([
      { email_key: ACTIVE.toLowerCase(), status: 'active' },
      { email_key: DISABLED, status: 'disabled' },
    ]);
    await expect(grpcClient.authenticate({ email: ACTIVE, password: PASSWORD })).resolves.toHaveProperty('token_type', 'Bearer');
    expect(calls).toEqual({ hash: 0, verify: 1 });
  });

  it('each runs the hasher compare exactly once and never hashes', async () => {
    const unknown = await grpcFailure({ email: UNKNOWN, password: PASSWORD });
    const wrong = await grpcFailure({ email: ACTIVE, password: `${PASSWORD}x` });
    const disabled = await grpcFailure({ email: DISABLED, password: PASSWORD });
    for (const failure of [unknown, wrong, disabled]) expect(failure.hasherCalls).toEqual({ hash: 0, verify: 1 });
  });

  it('answer with the same code, message and details, byte for byte, over grpc-js', async () => {
    const unknown = await grpcFailure({ email: UNKNOWN, password: PASSWORD });
    const wrong = await grpcFailure({ email: ACTIVE, password: `${PASSWORD}x` });
    const disabled = await grpcFailure({ email: DISABLED, password: PASSWORD });
    const disabledWrong = await grpcFailure({ email: DISABLED, password: `${PASSWORD}x` });
    expect(unknown.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(unknown.details).toHaveLength(1);
    const observable = ({ code, message, details }: typeof unknown) => ({ code, message, details });
    expect(observable(wrong)).toEqual(observable(unknown));
    expect(observable(disabled)).toEqual(observable(unknown));
    expect(observable(disabledWrong)).toEqual(observable(unknown));
    // The message names no case: nothing like "not found", "disabled" or "password is wrong".
    expect(Buffer.from(unknown.message, 'hex').toString()).toBe('invalid email or password');
  });

  it('the same holds for an unknown email that differs from a real one only by case or spaces', async () => {
    const caseVariant = await grpcFailure({ email: `  ${ACTIVE.toUpperCase()} `, password: `${PASSWORD}x` });
    const unknown = await grpcFailure({ email: UNKNOWN.toUpperCase(), password: `${PASSWORD}x` });
    expect({ ...caseVariant, hasherCalls: undefined }).toEqual({ ...unknown, hasherCalls: undefined });
    expect(caseVariant.hasherCalls).toEqual({ hash: 0, verify: 1 });
  });

  it.each<Protocol>(['connect', 'grpc', 'grpc-web'])('answer identically over Connect-ES (%s)', async (protocol) => {
    const unknown = await connectFailure(protocol, { email: UNKNOWN, password: PASSWORD });
    const wrong = await connectFailure(protocol, { email: ACTIVE, password: `${PASSWORD}x` });
    const disabled = await connectFailure(protocol, { email: DISABLED, password: PASSWORD });
    expect(unknown.code).toBe(Code.Unauthenticated);
    expect(wrong).toEqual(unknown);
    expect(disabled).toEqual(unknown);
    expect(calls).toEqual({ hash: 0, verify: 3 });
  });

  it('an email no user could have (bad syntax, control characters) is one more unknown email', async () => {
    const unknown = await grpcFailure({ email: UNKNOWN, password: PASSWORD });
    for (const email of ['no-at-sign', 'two@@example.com', 'nul\u0000@example.com', 'tab\t@example.com', '\u202Eevil@example.com']) {
      const failure = await grpcFailure({ email, password: PASSWORD });
      expect({ email, ...failure }).toEqual({ email, ...unknown });
    }
    // ...and counted against its email like any other failure (PostgreSQL text holds no NUL, so a stand-in does).
    const counted = await db.knex('login_attempts').where('key', 'like', 'email:nul%@example.com').first();
    expect(counted?.failures).toBeGreaterThanOrEqual(1);
  });
});
