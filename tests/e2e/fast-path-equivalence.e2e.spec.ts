import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { VerifyTokenRequestSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * The unary fast path (src/transport/connect/unary-fast-path.ts) against Connect itself: two
 * instances on one database, one with UNARY_FAST_PATH off, and the same bytes sent to both.
 * Status, headers, trailers (grpc-status, grpc-message, grpc-status-details-bin, x-request-id)
 * and body must match byte for byte; the metrics each call leaves must match too.
 */

let db: TestDatabase;
let fast: TestService;
let connect: TestService;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const env = testEnv(db, { MAX_MESSAGE_BYTES: '4096' });
  fast = await startTestService(env);
  connect = await startTestService({ ...env, UNARY_FAST_PATH: 'false' });
  const client = connectClient(fast.url);
  const email = `fast.path.${Date.now()}@example.com`;
  const password = 'fast path secret 9';
  await client.registerUser({ email, password, firstName: 'Fast', lastName: 'Path' });
  token = (await client.authenticate({ email, password })).accessToken;
});

afterAll(async () => {
  await connect?.[Symbol.asyncDispose]();
  await fast?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const VERIFY = '/identity.v1.IdentityService/VerifyToken';
const CHECK = '/envoy.service.auth.v3.Authorization/Check';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly trailers: Record<string, unknown>;
  readonly body: string;
  readonly reset?: number;
}

const frame = (message: Uint8Array, flags = 0) => {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([header, message]);
};
const verifyBody = (value: string) => frame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: value })));
const checkBody = (authorization: string | undefined) =>
  frame(
    toBinary(
      CheckRequestSchema,
      create(CheckRequestSchema, { attributes: { request: { http: { method: 'GET', path: '/', headers: authorization === undefined ? {} : { authorization } } } } }),
    ),
  );
/** A VerifyTokenRequest whose token field holds bytes that are not UTF-8. */
const invalidUtf8Body = () => frame(Buffer.from([0x0a, 0x03, 0x61, 0xff, 0x62]));

const JSON_HEADERS = { 'content-type': 'application/json', te: '' };

async function call(service: TestService, path: string, body: Buffer, extra: Record<string, string> = {}): Promise<Answer> {
  const session = http2.connect(service.url);
  try {
    return await new Promise<Answer>((resolve, reject) => {
      const requestHeaders: Record<string, string> = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'x-request-id': 'equivalence-1', ...extra };
      if (requestHeaders['te'] === '') delete requestHeaders['te'];
      const stream = session.request(requestHeaders);
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (headers = { ...h }));
      stream.on('trailers', (t) => (trailers = { ...t }));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', reject);
      stream.on('close', () => {
        delete headers['date'];
        resolve({ status: Number(headers[':status']), headers, trailers, body: Buffer.concat(chunks).toString('hex'), reset: stream.rstCode });
      });
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

/** grpc_server_handled_total and grpc_server_started_total for one method, by code. */
async function counters(service: TestService, method: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
  const found: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!/^grpc_server_(handled|started)_total\{/.test(line) || !line.includes(`grpc_method="${method}"`)) continue;
    const [series, value] = [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))];
    found[series] = value;
  }
  return found;
}

const delta = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]).filter(([, value]) => value !== 0));

async function same(path: string, body: () => Buffer, extra: Record<string, string> = {}): Promise<Answer> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  const before = await Promise.all([counters(fast, method), counters(connect, method)]);
  const [viaFast, viaConnect] = [await call(fast, path, body(), extra), await call(connect, path, body(), extra)];
  const after = await Promise.all([counters(fast, method), counters(connect, method)]);
  expect(viaFast).toEqual(viaConnect);
  expect(delta(before[0], after[0])).toEqual(delta(before[1], after[1]));
  return viaFast;
}

describe('the unary fast path answers exactly as Connect does', () => {
  it('VerifyToken with a valid token, with and without grpc-accept-encoding', async () => {
    const answer = await same(VERIFY, () => verifyBody(token));
    expect(answer.trailers['grpc-status']).toBe('0');
    // A success of VerifyToken logs at debug, so no line carries its id to echo (failures do).
    expect(answer.headers['x-request-id']).toBeUndefined();
    const gzip = await same(VERIFY, () => verifyBody(token), { 'grpc-accept-encoding': 'identity,deflate,gzip' });
    expect(gzip.headers['grpc-encoding']).toBe('gzip');
  });

  it('VerifyToken with a bad token: UNAUTHENTICATED with the same message, details and x-request-id trailer', async () => {
    const answer = await same(VERIFY, () => verifyBody(`${token.slice(0, -4)}AAAA`));
    expect(answer.trailers['grpc-status']).toBe('16');
    expect(answer.trailers['x-request-id']).toBe('equivalence-1');
    expect(answer.trailers['grpc-status-details-bin']).toBeDefined();
  });

  it('VerifyToken with an empty token (UNAUTHENTICATED) and with invalid UTF-8 (INVALID_ARGUMENT naming the field)', async () => {
    expect((await same(VERIFY, () => verifyBody(''))).trailers['grpc-status']).toBe('16');
    expect((await same(VERIFY, invalidUtf8Body)).trailers['grpc-status']).toBe('3');
  });

  it('bodies Connect refuses before the handler: over the size limit, empty, cut short, two messages, compressed without an encoding, not protobuf', async () => {
    const oversize = () => verifyBody('x'.repeat(5000));
    expect((await same(VERIFY, oversize)).trailers['grpc-status']).toBe('8');
    expect((await same(VERIFY, () => Buffer.alloc(0))).trailers['grpc-status']).toBe('12');
    expect((await same(VERIFY, () => verifyBody(token).subarray(0, 20))).trailers['grpc-status']).toBe('3');
    expect((await same(VERIFY, () => Buffer.concat([verifyBody(token), verifyBody(token)]))).trailers['grpc-status']).toBe('12');
    expect((await same(VERIFY, () => frame(gzipSync(verifyBody(token).subarray(5)), 1))).trailers['grpc-status']).toBe('13');
    expect((await same(VERIFY, () => frame(Buffer.from([0xff, 0xff, 0xff])))).trailers['grpc-status']).toBe('13');
  });

  it('a grpc-timeout already spent: DEADLINE_EXCEEDED', async () => {
    const answer = await same(VERIFY, () => verifyBody(token), { 'grpc-timeout': '0n' });
    expect(answer.trailers['grpc-status']).toBe('4');
  });

  it('a gzip-compressed request goes to Connect and is answered', async () => {
    const answer = await same(VERIFY, () => frame(gzipSync(verifyBody(token).subarray(5)), 1), { 'grpc-encoding': 'gzip' });
    expect(answer.trailers['grpc-status']).toBe('0');
  });

  it('Connect unary JSON: a valid token, with and without accept-encoding; a bad one; an empty one', async () => {
    const ok = await same(VERIFY, () => Buffer.from(JSON.stringify({ token })), JSON_HEADERS);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-request-id']).toBeUndefined();
    expect((await same(VERIFY, () => Buffer.from(JSON.stringify({ token })), { ...JSON_HEADERS, 'accept-encoding': 'gzip, br' })).status).toBe(200);
    const bad = await same(VERIFY, () => Buffer.from(JSON.stringify({ token: `${token.slice(0, -4)}AAAA` })), JSON_HEADERS);
    expect(bad.status).toBe(401);
    expect(bad.headers['x-request-id']).toBe('equivalence-1');
    expect((await same(VERIFY, () => Buffer.from('{}'), JSON_HEADERS)).status).toBe(401);
  });

  it('Connect unary JSON bodies refused before the handler: not JSON, an unknown field (ignored, so no token), invalid UTF-8, over the size limit with and without a Content-Length', async () => {
    expect((await same(VERIFY, () => Buffer.from('{"token":'), JSON_HEADERS)).status).toBe(400);
    expect((await same(VERIFY, () => Buffer.from('{"nope":1}'), JSON_HEADERS)).status).toBe(401);
    expect((await same(VERIFY, () => Buffer.concat([Buffer.from('{"token":"a'), Buffer.from([0xff]), Buffer.from('b"}')]), JSON_HEADERS)).status).toBe(400);
    expect((await same(VERIFY, () => Buffer.from(JSON.stringify({ token: 'x'.repeat(5000) })), JSON_HEADERS)).status).toBe(429);
    // With a Content-Length, refused before the body is read (nghttp2 itself resets a body that does not match it).
    expect((await same(VERIFY, () => Buffer.from(JSON.stringify({ token: 'x'.repeat(5000) })), { ...JSON_HEADERS, 'content-length': '5012' })).status).toBe(429);
  });

  it('Connect unary JSON: a connect-timeout-ms already spent, and Check', async () => {
    expect((await same(VERIFY, () => Buffer.from(JSON.stringify({ token })), { ...JSON_HEADERS, 'connect-timeout-ms': '0' })).status).toBe(504);
    const check = await same(CHECK, () => Buffer.from(JSON.stringify({ attributes: { request: { http: { headers: { authorization: `Bearer ${token}` } } } } })), JSON_HEADERS);
    expect(check.status).toBe(200);
  });

  it('a cached token whose session was revoked (answered without the interceptors on the fast path): the same UNAUTHENTICATED, for VerifyToken and Check', async () => {
    const client = connectClient(fast.url);
    const email = `fast.path.revoked.${Date.now()}@example.com`;
    const password = 'fast path secret 9';
    await client.registerUser({ email, password, firstName: 'Fast', lastName: 'Path' });
    const pair = await client.authenticate({ email, password });
    // Three times on each instance: the first two calls verify (a token is remembered on its second), the third is a cache hit.
    for (let i = 0; i < 3; i++) expect((await same(VERIFY, () => verifyBody(pair.accessToken))).trailers['grpc-status']).toBe('0');
    await client.logout({ refreshToken: pair.refreshToken });
    // Every replica enforces a revocation within a second.
    await expect.poll(async () => (await call(connect, VERIFY, verifyBody(pair.accessToken))).trailers['grpc-status'], { timeout: 3_000 }).toBe('16');
    await expect.poll(async () => (await call(fast, VERIFY, verifyBody(pair.accessToken))).trailers['grpc-status'], { timeout: 3_000 }).toBe('16');
    const refused = await same(VERIFY, () => verifyBody(pair.accessToken));
    expect(refused.trailers['x-request-id']).toBe('equivalence-1');
    expect(refused.trailers['grpc-status-details-bin']).toBeDefined();
    const denied = await same(CHECK, () => checkBody(`Bearer ${pair.accessToken}`));
    expect(denied.trailers['grpc-status']).toBe('0');
    expect(denied.body).not.toBe((await call(fast, CHECK, checkBody(`Bearer ${token}`))).body);
  });

  it('ext_authz Check: allowed, denied, no token', async () => {
    expect((await same(CHECK, () => checkBody(`Bearer ${token}`))).trailers['grpc-status']).toBe('0');
    expect((await same(CHECK, () => checkBody('Bearer nope'))).trailers['grpc-status']).toBe('0');
    expect((await same(CHECK, () => checkBody(undefined))).trailers['grpc-status']).toBe('0');
  });
});
