/**
 * gRPC server reflection (v1 and v1alpha) as the tools use it (issue 7): `buf curl` lists and
 * calls methods with no .proto files, and a grpc-js reflection client (the protocol grpcurl,
 * Postman and grpcui speak) lists the services and fetches complete file descriptors.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUF = `${ROOT}node_modules/.bin/buf`;
const IDENTITY = 'identity.v1.IdentityService';
const IDENTITY_METHODS = ['Authenticate', 'BatchGetUsers', 'ChangePassword', 'GetUser', 'Logout', 'RefreshToken', 'RegisterUser', 'VerifyToken'];
const PASSWORD = 'correct horse battery';

interface BufResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `buf curl` against the server; its exit code is the gRPC code × 8. */
function bufCurl(args: readonly string[]): Promise<BufResult> {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--http2-prior-knowledge', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

type Version = 'v1' | 'v1alpha';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const reflectionPackages = Object.fromEntries(
  (['v1', 'v1alpha'] as const).map((version) => {
    const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
      includeDirs: [`${ROOT}proto`],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as { grpc: { reflection: Record<Version, { ServerReflection: grpc.ServiceClientConstructor }> } };
    return [version, loaded.grpc.reflection[version].ServerReflection];
  }),
) as Record<Version, grpc.ServiceClientConstructor>;

/** One ServerReflectionInfo stream: each request is answered in order, on the same stream. */
function reflectionSession(target: string, version: Version) {
  const client = new reflectionPackages[version](target.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure());
  const stream = (client['ServerReflectionInfo'] as () => grpc.ClientDuplexStream<Json, Json>).call(client);
  const pending: ((response: Json) => void)[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
  stream.on('error', () => undefined);
  stream.on('data', (response: Json) => pending.shift()?.(response));
  return {
    ask(request: Json): Promise<Json> {
      return new Promise((resolve) => {
        pending.push(resolve);
        stream.write({ host: 'localhost', ...request });
      });
    },
    /** Half-closes; the server ends the stream with OK. */
    async end(): Promise<grpc.StatusObject> {
      stream.end();
      const result = await status;
      client.close();
      return result;
    },
  };
}

const descriptors = (response: Json): FileDescriptorProto[] => {
  expect(response['message_response'], JSON.stringify(response)).toBe('file_descriptor_response');
  return (response['file_descriptor_response']['file_descriptor_proto'] as Buffer[]).map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
};

let db: TestDatabase;
let service: TestService;

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startTestService(testEnv(db));
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

describe('buf curl, with reflection only', () => {
  it('lists the services', async () => {
    const result = await bufCurl(['--list-services', service.url]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.trim().split('\n').sort()).toEqual(['envoy.service.auth.v3.Authorization', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', IDENTITY]);
  });

  it.each(['grpc-v1', 'grpc-v1alpha'])('lists the IdentityService and Health methods (%s)', async (reflectProtocol) => {
    const result = await bufCurl(['--reflect-protocol', reflectProtocol, '--list-methods', service.url]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const methods = result.stdout.trim().split('\n');
    expect(methods).toEqual(expect.arrayContaining([...IDENTITY_METHODS.map((m) => `${IDENTITY}/${m}`), 'grpc.health.v1.Health/Check', 'grpc.health.v1.Health/Watch']));
  });

  it.each(['grpc', 'connect', 'grpcweb'])('calls RegisterUser and Health/Check with no --schema (%s)', async (protocol) => {
    const email = `buf.${protocol}.${Date.now()}@example.com`;
    const body = JSON.stringify({ email, password: PASSWORD, first_name: 'Buf', last_name: 'Curl' });
    const result = await bufCurl(['--protocol', protocol, '-d', body, `${service.url}/${IDENTITY}/RegisterUser`]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const response = JSON.parse(result.stdout) as { user: Record<string, string> };
    expect(response.user).toMatchObject({ email, firstName: 'Buf', lastName: 'Curl', status: 'USER_STATUS_ACTIVE' });
    expect(response.user['createdAt']).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    expect(result.stdout).not.toContain(PASSWORD);

    const again = await bufCurl(['--protocol', protocol, '-d', body, `${service.url}/${IDENTITY}/RegisterUser`]);
    expect(again.code).toBe(grpc.status.ALREADY_EXISTS * 8);
    expect(JSON.parse(again.stderr)).toMatchObject({ code: 'already_exists' });

    const health = await bufCurl(['--protocol', protocol, '-d', '{"service":""}', `${service.url}/grpc.health.v1.Health/Check`]);
    expect(health).toMatchObject({ code: 0 });
    expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING' });
  });
});

describe.each<Version>(['v1', 'v1alpha'])('a grpc-js reflection client (%s)', (version) => {
  it('lists the services', async () => {
    const session = reflectionSession(service.url, version);
    const response = await session.ask({ list_services: '' });
    expect(response['message_response']).toBe('list_services_response');
    expect(response['valid_host']).toBe('localhost');
    expect(response['original_request']).toMatchObject({ list_services: '' });
    const names = (response['list_services_response']['service'] as { name: string }[]).map((s) => s.name).sort();
    expect(names).toEqual(['envoy.service.auth.v3.Authorization', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', IDENTITY]);
    expect((await session.end()).code).toBe(grpc.status.OK);
  });

  it('fetches the file of identity.v1.IdentityService with google/protobuf/timestamp.proto, enough to rebuild the service', async () => {
    const session = reflectionSession(service.url, version);
    const files = descriptors(await session.ask({ file_containing_symbol: IDENTITY }));
    expect(files[0]?.name).toBe('identity/v1/identity.proto');
    expect(files.map((f) => f.name)).toContain('google/protobuf/timestamp.proto');
    expect(files[0]?.dependency).toEqual(['google/protobuf/timestamp.proto']);

    // The answer is self-contained: a registry builds from it, with every method and option.
    // (The requested file comes first, its imports after it, as grpc-go sends them.)
    const registry = createFileRegistry(files[0]!, (name) => files.find((file) => file.name === name));
    const described = registry.getService(IDENTITY);
    expect(described?.methods.map((m) => m.name).sort()).toEqual(IDENTITY_METHODS);
    const verify = described?.methods.find((m) => m.name === 'VerifyToken');
    expect(verify?.idempotency).toBe(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
    expect(verify?.input.typeName).toBe('identity.v1.VerifyTokenRequest');
    expect(registry.getMessage('identity.v1.User')?.fields.map((f) => f.name)).toEqual(['id', 'email', 'first_name', 'last_name', 'status', 'created_at', 'updated_at']);
    await session.end();
  });

  it('answers the other lookups grpcurl makes, several on one stream', async () => {
    const session = reflectionSession(service.url, version);
    const byMethod = descriptors(await session.ask({ file_containing_symbol: `${IDENTITY}.RegisterUser` }));
    expect(byMethod[0]?.name).toBe('identity/v1/identity.proto');
    const byMessage = descriptors(await session.ask({ file_containing_symbol: 'identity.v1.UserRegistered' }));
    expect(byMessage[0]?.name).toBe('identity/v1/events.proto');
    const byName = descriptors(await session.ask({ file_by_filename: 'google/protobuf/timestamp.proto' }));
    expect(byName.map((f) => f.name)).toEqual(['google/protobuf/timestamp.proto']);
    const identityByName = descriptors(await session.ask({ file_by_filename: 'identity/v1/identity.proto' }));
    expect(identityByName.map((f) => f.name)).toEqual(['identity/v1/identity.proto', 'google/protobuf/timestamp.proto']);
    const health = descriptors(await session.ask({ file_containing_symbol: 'grpc.health.v1.Health' }));
    expect(health[0]?.service.map((s) => s.name)).toEqual(['Health']);

    // The error details the service sends resolve too, so grpcurl prints them instead of raw bytes.
    for (const symbol of ['google.rpc.BadRequest', 'google.rpc.ErrorInfo', 'google.rpc.RetryInfo']) {
      const details = descriptors(await session.ask({ file_containing_symbol: symbol }));
      expect(details[0]?.name).toBe('google/rpc/error_details.proto');
    }

    const extensions = await session.ask({ all_extension_numbers_of_type: 'identity.v1.User' });
    expect(extensions).toMatchObject({ message_response: 'all_extension_numbers_response', all_extension_numbers_response: { base_type_name: 'identity.v1.User', extension_number: [] } });

    for (const request of [{ file_containing_symbol: 'no.such.Symbol' }, { file_by_filename: 'no/such.proto' }, { file_containing_extension: { containing_type: 'identity.v1.User', extension_number: 100 } }]) {
      const error = await session.ask(request);
      expect(error['message_response']).toBe('error_response');
      expect(error['error_response']['error_code']).toBe(grpc.status.NOT_FOUND);
    }
    expect((await session.end()).code).toBe(grpc.status.OK);
  });
});

describe('the reflection streams in /metrics', () => {
  it('are counted as bidi streams that ended OK', async () => {
    const session = reflectionSession(service.url, 'v1');
    await session.ask({ list_services: '' });
    await session.end();
    const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
    const series = text.split('\n').filter((line) => line.startsWith('grpc_server_handled_total{grpc_type="bidi_stream",grpc_service="grpc.reflection.v1.ServerReflection"'));
    expect(series.length).toBeGreaterThan(0);
    expect(series.every((line) => line.includes('grpc_code="OK"'))).toBe(true);
  });
});
