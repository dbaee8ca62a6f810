import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRegisteredSchema } from '../../src/gen/identity/v1/events_pb.js';
import { UserStatus } from '../../src/gen/identity/v1/identity_pb.js';
import { BadRequestSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { connectClient, grpc, grpcError, GrpcIdentityClient, type Protocol } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

let db: TestDatabase;
let service: TestService;
let grpcClient: GrpcIdentityClient;

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startTestService(testEnv(db));
  grpcClient = new GrpcIdentityClient(service.url);
});

afterAll(async () => {
  grpcClient?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

let counter = 0;
const uniqueEmail = (prefix = 'user') => `${prefix}.${Date.now()}.${++counter}@Example.COM`;
const PASSWORD = 'correct horse battery';

describe('the three RPCs through grpc-js', () => {
  it('registers, authenticates and verifies a token', async () => {
    const email = uniqueEmail('Ann');
    const registered = await grpcClient.registerUser({ email: `  ${email} `, password: PASSWORD, first_name: ' Ann ', last_name: 'Lee' });
    expect(registered['user']).toMatchObject({
      email: email.replace('Example.COM', 'example.com'),
      first_name: 'Ann',
      last_name: 'Lee',
      status: 'USER_STATUS_ACTIVE',
    });
    expect(registered['user']).not.toHaveProperty('password_hash');

    const authenticated = await grpcClient.authenticate({ email: email.toLowerCase(), password: PASSWORD });
    expect(authenticated['token_type']).toBe('Bearer');
    expect(authenticated['user']['id']).toBe(registered['user']['id']);

    const verified = await grpcClient.verifyToken({ token: authenticated['access_token'] });
    expect(verified['user_id']).toBe(registered['user']['id']);
    expect(Number(verified['expires_at']['seconds'])).toBe(Number(authenticated['expires_at']['seconds']));
    expect(verified['token_id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('grpc-js reads error messages as written, with their colons, @ signs, commas and non-ASCII text', async () => {
    const invalid = await grpcError(grpcClient.registerUser({ email: 'a@@b.io', password: PASSWORD, first_name: 'A', last_name: 'B' }));
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.details).toBe('email: must contain exactly one @');
    const several = await grpcError(grpcClient.registerUser({ email: '', password: '', first_name: '', last_name: '' }));
    expect(several.details).toMatch(/^email: [^%]+; password: [^%]+; first_name: [^%]+; last_name: [^%]+$/);
  });

  it('answers every error code of the contract table', async () => {
    const email = uniqueEmail();
    await grpcClient.registerUser({ email, password: PASSWORD, first_name: 'A', last_name: 'B' });

    const invalid = await grpcError(grpcClient.registerUser({ email: 'no-at-sign', password: PASSWORD, first_name: 'A', last_name: 'B' }));
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalid.details).toContain('email');

    const exists = await grpcError(grpcClient.registerUser({ email: email.toUpperCase(), password: PASSWORD, first_name: 'A', last_name: 'B' }));
    expect(exists.code).toBe(grpc.status.ALREADY_EXISTS);

    const wrong = await grpcError(grpcClient.authenticate({ email, password: 'wrong password!' }));
    expect(wrong.code).toBe(grpc.status.UNAUTHENTICATED);

    const badToken = await grpcError(grpcClient.verifyToken({ token: 'not.a.token' }));
    expect(badToken.code).toBe(grpc.status.UNAUTHENTICATED);

    const tooBig = await grpcError(grpcClient.verifyToken({ token: 'x'.repeat(1_100_000) }));
    expect(tooBig.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe.each<Protocol>(['connect', 'grpc', 'grpc-web'])('the RPCs through Connect-ES (%s)', (protocol) => {
  it('registers, authenticates and verifies', async () => {
    const client = connectClient(service.url, protocol);
    const email = uniqueEmail(protocol);
    const { user } = await client.registerUser({ email, password: PASSWORD, firstName: 'Zoë', lastName: 'Ångström' });
    expect(user?.status).toBe(UserStatus.ACTIVE);
    expect(user?.firstName).toBe('Zoë');
    const auth = await client.authenticate({ email, password: PASSWORD });
    const verified = await client.verifyToken({ token: auth.accessToken });
    expect(verified.userId).toBe(user?.id);
    expect(timestampDate(verified.expiresAt!).getTime()).toBe(timestampDate(auth.expiresAt!).getTime());
  });

  it('reports bad fields as google.rpc.BadRequest', async () => {
    const client = connectClient(service.url, protocol);
    const error = await client.registerUser({ email: 'a@b.c', password: 'password1', firstName: '', lastName: 'x'.repeat(51) }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    const fields = (error as ConnectError).findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    expect(fields.sort()).toEqual(['first_name', 'last_name', 'password']);
  });
});

describe('the outbox row of a registration', () => {
  it('is exactly one row whose payload decodes to the right UserRegistered', async () => {
    const email = uniqueEmail('outbox');
    const { user } = await connectClient(service.url).registerUser({ email, password: PASSWORD, firstName: 'Out', lastName: 'Box' });
    const rows = await db.knex('outbox').where({ aggregate_id: user!.id });
    expect(rows).toHaveLength(1);
    const event = fromBinary(UserRegisteredSchema, rows[0].payload);
    expect(event).toMatchObject({ userId: user!.id, email: user!.email, firstName: 'Out', lastName: 'Box', eventId: rows[0].event_id });
    expect(rows[0].event_type).toBe('identity.v1.UserRegistered');
    expect(JSON.stringify(rows[0].headers)).not.toContain(PASSWORD);
  });
});
