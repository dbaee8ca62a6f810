import http2 from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { connectClient, grpc, GrpcIdentityClient, type Protocol } from '../helpers/clients.js';
import { countingHasher } from '../helpers/counting-hasher.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * Hostile bytes on the wire: invalid UTF-8 in string fields (hand-made protobuf and JSON
 * bodies), bodies over the size limit, and deadlines shorter than bcrypt. The answer is
 * always the status the contract names, never INTERNAL, and nothing is written.
 */

const { calls: hasherCalls, wrap: countCalls } = countingHasher();

let db: TestDatabase;
let service: TestService;
/** A second instance with an expensive bcrypt, for deadlines shorter than one hash. */
let slow: TestService;
let rawClient: grpc.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  const env = testEnv(db);
  service = await startTestService(env, { wrapHasher: countCalls });
  // One database, so one key encryption key for both instances.
  slow = await startTestService({ ...testEnv(db, { BCRYPT_COST: '13' }), KEY_ENCRYPTION_KEY: env['KEY_ENCRYPTION_KEY']! }, { wrapHasher: countCalls });
  rawClient = new grpc.Client(`127.0.0.1:${service.apiPort}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  rawClient?.close();
  await slow?.[Symbol.asyncDispose]();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

let counter = 0;
const uniqueEmail = (prefix: string) => `${prefix}.${Date.now()}.${++counter}@example.com`;
const PASSWORD = 'wire level secret 9';
const METHOD = (name: string) => `/identity.v1.IdentityService/${name}`;

// ---- hand-made protobuf ----------------------------------------------------------------

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

/** A length-delimited field (wire type 2) holding exactly these bytes. */
const field = (no: number, bytes: Buffer | string) => {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return Buffer.concat([varint((no << 3) | 2), varint(data.length), data]);
};

/** Byte sequences that are not UTF-8: each must be refused, none replaced by U+FFFD and accepted. */
const INVALID_UTF8: Record<string, Buffer> = {
  'a lone 0xff': Buffer.from([0xff]),
  'a lone continuation byte': Buffer.from([0x80]),
  'an overlong NUL': Buffer.from([0xc0, 0x80]),
  'an overlong slash': Buffer.from([0xe0, 0x80, 0xaf]),
  'a UTF-16 surrogate encoded as UTF-8 (CESU-8)': Buffer.from([0xed, 0xa0, 0x80]),
  'a sequence cut short': Buffer.from([0xe2, 0x82]),
  'a code point above U+10FFFF': Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  'a 5-byte form': Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
};

const withBad = (valid: string, bad: Buffer) => Buffer.concat([Buffer.from(valid.slice(0, 3)), bad, Buffer.from(valid.slice(3))]);

interface RawResult {
  readonly code: number;
  readonly message: string;
  readonly badFields: string[];
}

function rawUnary(method: string, body: Buffer, options: grpc.CallOptions = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    rawClient.makeUnaryRequest(
      METHOD(method),
      (value: Buffer) => value,
      (value: Buffer) => value,
      body,
      new grpc.Metadata(),
      options,
      (error) => {
        if (error === null) return resolve({ code: grpc.status.OK, message: '', badFields: [] });
        const details = error.metadata.get('grpc-status-details-bin')[0];
        // Connect percent-encodes ':' in grpc-message, and grpc-js decodes only with decodeURI.
        resolve({ code: error.code, message: error.details, badFields: details === undefined ? [] : badRequestFields(details as Buffer) });
      },
    );
  });
}

/** The field names of the google.rpc.BadRequest inside a google.rpc.Status, read by hand. */
function badRequestFields(statusBytes: Uint8Array): string[] {
  const status = new BinaryReader(statusBytes);
  const fields: string[] = [];
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
    if (typeUrl.endsWith('/google.rpc.BadRequest')) fields.push(...fromBinary(BadRequestSchema, value).fieldViolations.map((v) => v.field));
  }
  return fields.sort();
}

async function rowCounts() {
  const [users] = await db.knex('users').count({ n: '*' });
  const [outbox] = await db.knex('outbox').count({ n: '*' });
  return { users: Number(users!.n), outbox: Number(outbox!.n) };
}

// ---- raw HTTP/2 ----------------------------------------------------------------------

interface H2Response {
  readonly status: number;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
}

async function h2Post(path: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<H2Response> {
  const session = http2.connect(service.url);
  try {
    return await new Promise<H2Response>((resolve, reject) => {
      session.once('error', reject);
      const request = session.request({ ':method': 'POST', ':path': path, ...headers });
      const chunks: Buffer[] = [];
      let responseHeaders: http2.IncomingHttpHeaders = {};
      request.on('response', (h) => (responseHeaders = h));
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks) }));
      request.on('error', reject);
      request.end(body);
    });
  } finally {
    session.close();
  }
}

const json = (parts: (string | Buffer)[]) => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));

// ---- tests -----------------------------------------------------------------------------

describe('invalid UTF-8 in a string field, sent as raw protobuf through grpc-js', () => {
  const registerFields = { email: 1, password: 2, first_name: 3, last_name: 4 } as const;

  it('a valid hand-made request is accepted, so the encoding itself is right', async () => {
    const body = Buffer.concat([field(1, uniqueEmail('raw')), field(2, PASSWORD), field(3, 'Raw'), field(4, 'Bytes')]);
    expect(await rawUnary('RegisterUser', body)).toEqual({ code: grpc.status.OK, message: '', badFields: [] });
  });

  for (const [what, bad] of Object.entries(INVALID_UTF8)) {
    it(`RegisterUser: ${what} in each field is INVALID_ARGUMENT naming that field, and stores nothing`, async () => {
      for (const [name, no] of Object.entries(registerFields)) {
        const values: Record<number, Buffer | string> = { 1: uniqueEmail('utf8'), 2: PASSWORD, 3: 'First', 4: 'Last' };
        values[no] = withBad(String(values[no]), bad);
        const body = Buffer.concat(Object.entries(values).map(([n, v]) => field(Number(n), v)));
        const before = await rowCounts();
        const result = await rawUnary('RegisterUser', body);
        expect({ name, ...result }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT, message: `${name}: must be valid UTF-8`, badFields: [name] });
        expect(await rowCounts()).toEqual(before);
      }
    });
  }

  it('RegisterUser: every bad field is named at once', async () => {
    const body = Buffer.concat([field(1, withBad('bad@example.com', INVALID_UTF8['a lone 0xff']!)), field(2, PASSWORD), field(3, withBad('First', Buffer.from([0xc3]))), field(4, 'Last')]);
    const result = await rawUnary('RegisterUser', body);
    expect(result.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(result.badFields).toEqual(['email', 'first_name']);
  });

  it('Authenticate: invalid UTF-8 in email or password is INVALID_ARGUMENT naming the field, without bcrypt', async () => {
    const email = uniqueEmail('auth');
    await rawUnary('RegisterUser', Buffer.concat([field(1, email), field(2, PASSWORD), field(3, 'A'), field(4, 'B')]));
    for (const bad of Object.values(INVALID_UTF8)) {
      const before = { ...hasherCalls };
      const badEmail = await rawUnary('Authenticate', Buffer.concat([field(1, withBad(email, bad)), field(2, PASSWORD)]));
      expect(badEmail).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: 'email: must be valid UTF-8', badFields: ['email'] });
      const badPassword = await rawUnary('Authenticate', Buffer.concat([field(1, email), field(2, withBad(PASSWORD, bad))]));
      expect(badPassword).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: 'password: must be valid UTF-8', badFields: ['password'] });
      expect(hasherCalls).toEqual(before);
    }
    // The same password with valid bytes still works: the refusals counted nothing against it.
    const ok = await rawUnary('Authenticate', Buffer.concat([field(1, email), field(2, PASSWORD)]));
    expect(ok.code).toBe(grpc.status.OK);
  });

  it('VerifyToken: invalid UTF-8 in the token is INVALID_ARGUMENT naming token', async () => {
    for (const bad of Object.values(INVALID_UTF8)) {
      const result = await rawUnary('VerifyToken', field(1, withBad('eyJhbGciOiJFUzI1NiJ9.e30.c2ln', bad)));
      expect(result).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: 'token: must be valid UTF-8', badFields: ['token'] });
    }
  });

  it('malformed protobuf (a length past the end) is refused without reaching a handler', async () => {
    const truncated = Buffer.concat([varint((1 << 3) | 2), varint(50), Buffer.from('short')]);
    const before = await rowCounts();
    const result = await rawUnary('RegisterUser', truncated);
    expect(await rowCounts()).toEqual(before);
    // Connect, like grpc-go, answers an unparsable message with INTERNAL ("parse binary: premature
    // EOF"); INVALID_ARGUMENT would fit the contract better. Either way: no stack, nothing stored.
    expect([grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL]).toContain(result.code);
    expect(result.message).not.toMatch(/at |\.ts|\.js/); // no stack or file names
  });
});

describe('invalid UTF-8 over the Connect protocol (raw HTTP/2)', () => {
  const path = METHOD('RegisterUser');

  it('a JSON body with invalid UTF-8 inside a string is invalid_argument, and stores nothing', async () => {
    for (const bad of Object.values(INVALID_UTF8)) {
      const before = await rowCounts();
      const body = json(['{"email":"', uniqueEmail('json'), '","password":"', PASSWORD, '","firstName":"Jo', bad, 'n","lastName":"Doe"}']);
      const response = await h2Post(path, { 'content-type': 'application/json', 'connect-protocol-version': '1' }, body);
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ code: 'invalid_argument' });
      expect(await rowCounts()).toEqual(before);
    }
  });

  it('the same JSON with valid bytes is accepted (the request itself is well formed)', async () => {
    const body = json(['{"email":"', uniqueEmail('json'), '","password":"', PASSWORD, '","firstName":"Jo', Buffer.from('ë'), 'n","lastName":"Doe"}']);
    const response = await h2Post(path, { 'content-type': 'application/json', 'connect-protocol-version': '1' }, body);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString('utf8')).user.firstName).toBe('Joën');
  });

  it('a JSON escape for a lone surrogate is invalid_argument naming the field', async () => {
    const body = json(['{"email":"', uniqueEmail('json'), '","password":"', PASSWORD, '","firstName":"Jo\\ud800n","lastName":"Doe"}']);
    const response = await h2Post(path, { 'content-type': 'application/json', 'connect-protocol-version': '1' }, body);
    expect(response.status).toBe(400);
    const error = JSON.parse(response.body.toString('utf8'));
    expect(error).toMatchObject({ code: 'invalid_argument' });
    expect(error.message).toContain('first_name');
  });

  it('a binary (application/proto) body with invalid UTF-8 is invalid_argument naming the field', async () => {
    const body = Buffer.concat([field(1, uniqueEmail('proto')), field(2, PASSWORD), field(3, 'First'), field(4, withBad('Last', INVALID_UTF8['a lone 0xff']!))]);
    const response = await h2Post(path, { 'content-type': 'application/proto', 'connect-protocol-version': '1' }, body);
    expect(response.status).toBe(400);
    const error = JSON.parse(response.body.toString('utf8'));
    expect(error).toMatchObject({ code: 'invalid_argument', message: 'last_name: must be valid UTF-8' });
  });

  it('a body that is not JSON at all is invalid_argument', async () => {
    const response = await h2Post(path, { 'content-type': 'application/json', 'connect-protocol-version': '1' }, Buffer.from('{"email":'));
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ code: 'invalid_argument' });
  });
});

describe('a request body over the 1 MiB limit', () => {
  const MIB = 1_048_576;

  it('is RESOURCE_EXHAUSTED through grpc-js, for every RPC', async () => {
    const big = 'x'.repeat(MIB + 16);
    const client = new GrpcIdentityClient(service.url);
    try {
      const calls = [
        client.registerUser({ email: uniqueEmail('big'), password: PASSWORD, first_name: big, last_name: 'B' }),
        client.authenticate({ email: uniqueEmail('big'), password: big }),
        client.verifyToken({ token: big }),
      ];
      for (const call of calls) {
        const error = (await call.then(() => undefined, (e: unknown) => e)) as grpc.ServiceError;
        expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      }
    } finally {
      client.close();
    }
  });

  it('is RESOURCE_EXHAUSTED as a raw protobuf message, while one just under the limit is parsed (and then refused as too long)', async () => {
    const under = Buffer.concat([field(1, uniqueEmail('under')), field(2, PASSWORD), field(3, 'y'.repeat(MIB - 200)), field(4, 'L')]);
    expect(under.length).toBeLessThanOrEqual(MIB);
    const underResult = await rawUnary('RegisterUser', under);
    expect(underResult.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(underResult.badFields).toEqual(['first_name']);

    const over = Buffer.concat([field(1, uniqueEmail('over')), field(2, PASSWORD), field(3, 'y'.repeat(MIB)), field(4, 'L')]);
    expect((await rawUnary('RegisterUser', over)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it.each<Protocol>(['connect', 'grpc', 'grpc-web'])('is ResourceExhausted through Connect-ES (%s)', async (protocol) => {
    const before = await rowCounts();
    const error = await connectClient(service.url, protocol)
      .registerUser({ email: uniqueEmail(protocol), password: PASSWORD, firstName: 'z'.repeat(MIB + 16), lastName: 'L' })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.ResourceExhausted);
    expect(await rowCounts()).toEqual(before);
  });

  it.each([
    ['gRPC', { 'content-type': 'application/grpc', te: 'trailers' }, (body: Buffer) => Buffer.concat([Buffer.from([0, 0, 0x20, 0, 0]), body])],
    ['Connect', { 'content-type': 'application/proto', 'connect-protocol-version': '1' }, (body: Buffer) => body],
  ])('ends the stream (RST_STREAM NO_ERROR) after answering, so a %s client still uploading stops instead of waiting forever', async (_protocol, headers, frame) => {
    const session = http2.connect(service.url);
    try {
      const request = session.request({ ':method': 'POST', ':path': METHOD('RegisterUser'), ...headers });
      request.on('data', () => undefined);
      request.on('error', () => undefined);
      const answered = new Promise<http2.IncomingHttpHeaders>((resolve) => request.once('response', resolve));
      const closed = new Promise<number>((resolve) => request.once('close', () => resolve(request.rstCode ?? -1)));
      request.write(frame(Buffer.alloc(MIB + 1024, 0x41))); // more than the limit, and the request is never ended
      const response = await answered;
      expect(Number(response[':status'])).toBeGreaterThanOrEqual(200);
      const rstCode = await Promise.race([closed, sleep(10_000).then(() => 'still open after 10 s')]);
      expect(rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });

  it('is resource_exhausted as a raw Connect JSON body', async () => {
    const body = json(['{"email":"', uniqueEmail('rawbig'), '","password":"', PASSWORD, '","firstName":"', 'q'.repeat(MIB), '","lastName":"L"}']);
    const response = await h2Post(METHOD('RegisterUser'), { 'content-type': 'application/json', 'connect-protocol-version': '1' }, body);
    expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ code: 'resource_exhausted' });
  });
});

describe('a deadline shorter than bcrypt', () => {
  /**
   * Registers `email` again on the slow instance, with time to spare, and expects it to be the
   * first and only registration of that address. This is the event the tests wait for instead of
   * a fixed sleep: the unique email key means the call that timed out can no longer write a row
   * once this one has (its insert would fail), and had it written one before, this one would be
   * ALREADY_EXISTS. With one bcrypt worker, it also runs after any hash the timed-out call left.
   */
  async function registersAfterwards(email: string, before: { users: number; outbox: number }) {
    const client = new GrpcIdentityClient(slow.url);
    try {
      const done = await client.registerUser({ email, password: PASSWORD, first_name: 'Afterwards', last_name: 'L' }, { deadlineMs: 30_000 });
      expect(done['user']['email']).toBe(email);
    } finally {
      client.close();
    }
    const rows = await db.knex('users').where({ email_key: email.toLowerCase() }).select('first_name');
    expect(rows).toEqual([{ first_name: 'Afterwards' }]);
    // Nothing half-written either: exactly the second registration's user and event were added.
    expect(await rowCounts()).toEqual({ users: before.users + 1, outbox: before.outbox + 1 });
  }

  it('a 1 ms grpc-js deadline is DEADLINE_EXCEEDED and leaves no users row', async () => {
    const client = new GrpcIdentityClient(slow.url);
    try {
      const email = uniqueEmail('deadline1');
      const before = await rowCounts();
      const error = (await client.registerUser({ email, password: PASSWORD, first_name: 'D', last_name: 'L' }, { deadlineMs: 1 }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      await registersAfterwards(email, before);
    } finally {
      client.close();
    }
  });

  it('a deadline that expires while the server hashes is DEADLINE_EXCEEDED; the work stops and nothing is written', async () => {
    const client = new GrpcIdentityClient(slow.url);
    try {
      const email = uniqueEmail('deadline2');
      const before = { rows: await rowCounts(), hashes: hasherCalls.hash };
      const error = (await client.registerUser({ email, password: PASSWORD, first_name: 'D', last_name: 'L' }, { deadlineMs: 150 }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      // The request did reach the hasher (so this is the server's deadline, not only the client's).
      expect(hasherCalls.hash).toBe(before.hashes + 1);
      await registersAfterwards(email, before.rows);
    } finally {
      client.close();
    }
  });

  it('a Connect timeout is DeadlineExceeded too', async () => {
    const email = uniqueEmail('deadline3');
    const before = await rowCounts();
    const error = await connectClient(slow.url)
      .registerUser({ email, password: PASSWORD, firstName: 'D', lastName: 'L' }, { timeoutMs: 150 })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.DeadlineExceeded);
    await registersAfterwards(email, before);
  });
});

