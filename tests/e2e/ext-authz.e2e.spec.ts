/**
 * Envoy external authorization (issue 15; contract part 2, "Envoy external authorization"):
 * envoy.service.auth.v3.Authorization/Check on the API port of the real server. No Envoy
 * binary can be installed here, so a grpc-js client sends requests shaped as Envoy's ext_authz
 * filter sends them (tests/helpers/envoy.ts), and `upstreamHeaders` applies an allowed answer
 * to the request as Envoy does.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID, type JsonWebKey } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { checkResults, EnvoyAuthzClient, envoyCheckRequest, upstreamHeaders, type CheckResponse, type Json } from '../helpers/envoy.js';
import {
  b64url,
  claimsFor,
  compact,
  decodeToken,
  delta,
  es256Signer,
  fetchJwks,
  hs256Signer,
  jwkThumbprint,
  privateJwkOf,
  verifyFailures,
  type Expected,
} from '../helpers/jwt.js';
import { captureLogs, startTestService, testEnv, type TestService } from '../helpers/service.js';

const ISSUER = 'https://identity.test';
const AUDIENCE = 'mesh-test';
const SKEW_SECONDS = 30;
const PASSWORD = 'correct horse battery';
const expected: Expected = { issuer: ISSUER, audience: AUDIENCE };
const CHALLENGE = `Bearer realm="${ISSUER}"`;
const INVALID_TOKEN_CHALLENGE = `${CHALLENGE}, error="invalid_token"`;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let identity: GrpcIdentityClient;
let envoy: EnvoyAuthzClient;
const logs = captureLogs();

let userId: string;
let token: string;
let loginSessionId: string;
let tokenId: string;
let kid: string;
let privateJwk: JsonWebKey;
let signReal: (input: Buffer) => Buffer;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { TOKEN_ISSUER: ISSUER, TOKEN_AUDIENCE: AUDIENCE, TOKEN_CLOCK_SKEW_SECONDS: String(SKEW_SECONDS), LOG_LEVEL: 'debug' });
  service = await startTestService(env, { logDestination: logs.destination });
  identity = new GrpcIdentityClient(service.url);
  envoy = new EnvoyAuthzClient(service.url);
  const email = `ext.authz.${Date.now()}@example.com`;
  userId = (await identity.registerUser({ email, password: PASSWORD, first_name: 'Ext', last_name: 'Authz' }))['user']['id'];
  const login = await identity.authenticate({ email, password: PASSWORD });
  token = login['access_token'];
  // Authenticate opens a session (issue 13): its tokens carry sid.
  loginSessionId = login['session_id'];
  const decoded = decodeToken(token);
  tokenId = String(decoded.claims['jti']);
  kid = String(decoded.header['kid']);
  privateJwk = await privateJwkOf(db.knex, kid, env['KEY_ENCRYPTION_KEY']!);
  signReal = es256Signer(privateJwk);
});

afterAll(async () => {
  envoy?.close();
  identity?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const header = (extra: Json = {}): Json => ({ alg: 'ES256', typ: 'JWT', kid, ...extra });
/** A token signed with the service's own key: valid unless the claims or header say otherwise. */
const realToken = (claims: Json = {}, headerExtra: Json = {}) => compact(header(headerExtra), claimsFor(userId, expected, claims), signReal);
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Both counters at once, so a test can assert exactly what one call added. */
async function counters(url = service.adminUrl) {
  const [failures, checks] = await Promise.all([verifyFailures(url), checkResults(url)]);
  return { failures, checks };
}

async function countedDuring<T>(work: () => Promise<T>, url = service.adminUrl) {
  const before = await counters(url);
  const result = await work();
  const after = await counters(url);
  return { result, failures: delta(before.failures, after.failures), checks: delta(before.checks, after.checks) };
}

function expectAllowed(response: CheckResponse, identityHeaders: { userId: string; tokenId: string; sessionId?: string }, headersToRemove: string[] = []) {
  expect(response.status).toEqual({ code: 0, message: '', details: [] });
  expect(response.http_response).toBe('ok_response');
  expect(response.ok_response).toMatchObject({ headers_to_remove: headersToRemove, response_headers_to_add: [] });
  const set = (key: string, value: string) => ({ header: { key, value, raw_value: Buffer.alloc(0) }, append: null, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD', keep_empty_value: true });
  expect(response.ok_response!.headers).toEqual([
    set('x-user-id', identityHeaders.userId),
    set('x-session-id', identityHeaders.sessionId ?? ''),
    set('x-token-id', identityHeaders.tokenId),
  ]);
}

/** 16 with a 401 and the RFC 6750 challenge, and nothing else: no message, body or other header. */
function expectDenied(response: CheckResponse, challenge: string) {
  expect(response.status).toEqual({ code: grpc.status.UNAUTHENTICATED, message: '', details: [] });
  expect(response.http_response).toBe('denied_response');
  expect(response.denied_response).toEqual({
    status: { code: 'Unauthorized' },
    headers: [{ header: { key: 'www-authenticate', value: challenge, raw_value: Buffer.alloc(0) }, append: null, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD', keep_empty_value: true }],
    body: '',
  });
}

/** Check refuses `candidate` as an invalid token, with exactly `reason` counted once. */
async function expectRefused(candidate: string, reason: string): Promise<CheckResponse> {
  const { result, failures, checks } = await countedDuring(() => envoy.checkAuthorization(`Bearer ${candidate}`));
  expectDenied(result, INVALID_TOKEN_CHALLENGE);
  expect(failures).toEqual({ [reason]: 1 });
  expect(checks).toEqual({ denied: 1 });
  return result;
}

describe('an allowed request', () => {
  it('gets status 0 and the identity headers, set with OVERWRITE_IF_EXISTS_OR_ADD; authorization stays (strip off by default)', async () => {
    const { result, failures, checks } = await countedDuring(() => envoy.checkAuthorization(`Bearer ${token}`));
    expectAllowed(result, { userId, tokenId, sessionId: loginSessionId });
    expect(result.denied_response).toBeUndefined();
    expect(failures).toEqual({});
    expect(checks).toEqual({ allowed: 1 });
    const upstream = upstreamHeaders(envoyCheckRequest({ headers: { authorization: `Bearer ${token}` } })['attributes']['request']['http']['headers'], result);
    expect(upstream).toMatchObject({ authorization: `Bearer ${token}`, 'x-user-id': userId, 'x-session-id': loginSessionId, 'x-token-id': tokenId });
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('takes the scheme in any case (%s)', async (scheme) => {
    expectAllowed(await envoy.checkAuthorization(`${scheme} ${token}`), { userId, tokenId, sessionId: loginSessionId });
  });

  it('takes more than one space after the scheme', async () => {
    expectAllowed(await envoy.checkAuthorization(`Bearer   ${token}`), { userId, tokenId, sessionId: loginSessionId });
  });

  it('denies the token of a session revoked a moment ago, with reason revoked (issue 13)', async () => {
    const email = `ext.authz.revoked.${Date.now()}@example.com`;
    await identity.registerUser({ email, password: PASSWORD, first_name: 'Re', last_name: 'Voked' });
    const session = await identity.authenticate({ email, password: PASSWORD });
    expectAllowed(await envoy.checkAuthorization(`Bearer ${session['access_token']}`), { userId: session['user']['id'], tokenId: String(decodeToken(session['access_token']).claims['jti']), sessionId: session['session_id'] });
    await identity.logout({ refresh_token: session['refresh_token'] });
    await expect.poll(async () => (await envoy.checkAuthorization(`Bearer ${session['access_token']}`)).status?.code, { timeout: 1_000 }).toBe(grpc.status.UNAUTHENTICATED);
    await expectRefused(session['access_token'], 'revoked');
  });

  it('carries the session of a token with a sid claim in x-session-id', async () => {
    const sessionId = randomUUID();
    const withSession = realToken({ sid: sessionId, jti: 'with-session' });
    expectAllowed(await envoy.checkAuthorization(`Bearer ${withSession}`), { userId, tokenId: 'with-session', sessionId });
  });

  it("replaces the client's own x-user-id, x-session-id and x-token-id: none of them reaches the upstream", async () => {
    const spoofed = { authorization: `Bearer ${token}`, 'x-user-id': randomUUID(), 'x-session-id': 'attacker-session', 'x-token-id': 'attacker-token' };
    const request = envoyCheckRequest({ headers: spoofed });
    const response = await envoy.check(request);
    expectAllowed(response, { userId, tokenId, sessionId: loginSessionId });
    const upstream = upstreamHeaders(request['attributes']['request']['http']['headers'], response);
    expect(upstream['x-user-id']).toBe(userId);
    expect(upstream['x-session-id']).toBe(loginSessionId);
    expect(upstream['x-token-id']).toBe(tokenId);
    expect(Object.values(upstream)).not.toContain('attacker-session');
    expect(Object.values(upstream)).not.toContain(spoofed['x-user-id']);
  });

  it('is read from header_map too (Envoy with encode_raw_headers: true)', async () => {
    expectAllowed(await envoy.checkAuthorization(`Bearer ${token}`, { rawHeaders: true }), { userId, tokenId, sessionId: loginSessionId });
    expectDenied(await envoy.checkAuthorization(undefined, { rawHeaders: true }), CHALLENGE);
  });

  it('for any method and path: Check decides on the token alone', async () => {
    expectAllowed(await envoy.checkAuthorization(`Bearer ${token}`, { method: 'DELETE', path: '/admin/everything' }), { userId, tokenId, sessionId: loginSessionId });
  });
});

describe('a request without a Bearer token', () => {
  it('is denied: 16, 401 and a challenge without an error code (RFC 6750 §3.1), counted as missing', async () => {
    const { result, failures, checks } = await countedDuring(() => envoy.checkAuthorization(undefined));
    expectDenied(result, CHALLENGE);
    expect(failures).toEqual({ missing: 1 });
    expect(checks).toEqual({ denied: 1 });
  });

  it.each([
    ['Basic', `Basic ${Buffer.from('ann:secret').toString('base64')}`],
    ['a token under another scheme', `Token ${token}`],
    ['a bare token without a scheme', token],
    ['an empty header', ''],
    ['a scheme that merely starts with Bearer', `Bearerx ${token}`],
  ])('another scheme is no token either: %s', async (_name, value) => {
    const { result, failures } = await countedDuring(() => envoy.checkAuthorization(value));
    expectDenied(result, CHALLENGE);
    expect(failures).toEqual({ missing: 1 });
  });

  it('is denied, not failed, when the request has no attributes at all', async () => {
    expectDenied(await envoy.check({}), CHALLENGE);
    expectDenied(await envoy.check({ attributes: { request: {} } }), CHALLENGE);
  });
});

describe('a bad token is denied with error="invalid_token" and its reason counted', () => {
  it('Bearer with nothing after it (malformed)', async () => {
    await expectRefused('', 'malformed');
    const { result } = await countedDuring(() => envoy.checkAuthorization('Bearer'));
    expectDenied(result, INVALID_TOKEN_CHALLENGE);
  });

  it('a tampered payload under the original signature', async () => {
    const [encodedHeader, , signature] = token.split('.');
    await expectRefused(`${encodedHeader}.${b64url({ ...decodeToken(token).claims, sub: randomUUID() })}.${signature}`, 'signature');
  });

  it('a tampered signature', async () => {
    const [encodedHeader, payload, signature = ''] = token.split('.');
    await expectRefused(`${encodedHeader}.${payload}.${signature.slice(0, 20)}${signature[20] === 'A' ? 'B' : 'A'}${signature.slice(21)}`, 'signature');
  });

  it('a token signed with a foreign key: under its own kid, and under ours', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signOther = es256Signer(other.privateKey.export({ format: 'jwk' }));
    await expectRefused(compact(header({ kid: jwkThumbprint(other.publicKey.export({ format: 'jwk' })) }), claimsFor(userId, expected), signOther), 'unknown_key');
    await expectRefused(compact(header(), claimsFor(userId, expected), signOther), 'signature');
  });

  it('another issuer', async () => {
    await expectRefused(realToken({ iss: 'https://evil.test' }), 'issuer');
  });

  it('another audience', async () => {
    await expectRefused(realToken({ aud: 'some-other-service' }), 'audience');
  });

  it('alg none, unsigned', async () => {
    await expectRefused(compact({ alg: 'none', typ: 'JWT' }, claimsFor(userId, expected)), 'algorithm');
    await expectRefused(compact({ alg: 'none', typ: 'JWT', kid }, claimsFor(userId, expected)), 'algorithm');
  });

  it('HS256 keyed with our public key', async () => {
    const jwk = (await fetchJwks(service.adminUrl)).keys.find((key) => key['kid'] === kid)!;
    await expectRefused(compact(header({ alg: 'HS256' }), claimsFor(userId, expected), hs256Signer(JSON.stringify(jwk))), 'algorithm');
  });

  it('expired beyond the clock skew', async () => {
    const now = nowSeconds();
    await expectRefused(realToken({ iat: now - 3_700, nbf: now - 3_700, exp: now - SKEW_SECONDS - 60 }), 'expired');
  });

  it('two Authorization headers, which Envoy joins with a comma', async () => {
    await expectRefused(`${token},Bearer ${token}`, 'malformed');
  });

  it('tells nothing about why: every invalid-token denial is the same message, byte for byte', async () => {
    const answers = await Promise.all(
      [realToken({ iss: 'https://evil.test' }), realToken({ aud: 'x' }), `${token}x`, 'garbage', realToken({ exp: nowSeconds() - 3_600 })].map((candidate) =>
        envoy.checkAuthorization(`Bearer ${candidate}`),
      ),
    );
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    expectDenied(answers[0]!, INVALID_TOKEN_CHALLENGE);
  });
});

describe('equivalence with VerifyToken', () => {
  type Outcome = { accepted: true; userId: string; tokenId: string } | { accepted: false };

  async function viaVerifyToken(candidate: string): Promise<Outcome> {
    try {
      const verified = await identity.verifyToken({ token: candidate });
      return { accepted: true, userId: verified['user_id'], tokenId: verified['token_id'] };
    } catch (error) {
      expect((error as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
      return { accepted: false };
    }
  }

  async function viaCheck(candidate: string): Promise<Outcome> {
    const response = await envoy.checkAuthorization(`Bearer ${candidate}`);
    if (response.status?.code !== 0) {
      expectDenied(response, INVALID_TOKEN_CHALLENGE);
      return { accepted: false };
    }
    const headers = Object.fromEntries(response.ok_response!.headers.map((option) => [option.header.key, option.header.value]));
    return { accepted: true, userId: headers['x-user-id']!, tokenId: headers['x-token-id']! };
  }

  it('over a corpus of tokens, Check allows exactly what VerifyToken accepts, with the same user and token id', async () => {
    const now = nowSeconds();
    const [encodedHeader = '', payload = '', signature = ''] = token.split('.');
    const corpus: Record<string, string> = {
      'the real token': token,
      'forged with the real key': realToken(),
      'expired within the skew': realToken({ exp: now - SKEW_SECONDS + 10 }),
      'expired beyond the skew': realToken({ exp: now - SKEW_SECONDS - 10 }),
      'nbf within the skew': realToken({ nbf: now + SKEW_SECONDS - 10 }),
      'nbf beyond the skew': realToken({ nbf: now + SKEW_SECONDS + 60 }),
      'no nbf': realToken({ nbf: undefined }),
      'with a sid': realToken({ sid: randomUUID() }),
      'sub not a uuid': realToken({ sub: 'ann' }),
      'no jti': realToken({ jti: undefined }),
      'aud as an array': realToken({ aud: [AUDIENCE] }),
      'typ at+jwt': realToken({}, { typ: 'at+jwt' }),
      'no typ': realToken({}, { typ: undefined }),
      'crit header': realToken({}, { crit: ['exp'] }),
      'tampered payload': `${encodedHeader}.${b64url({ ...decodeToken(token).claims, exp: now + 86_400 })}.${signature}`,
      'signature of another token': `${encodedHeader}.${payload}.${realToken().split('.')[2]}`,
      'no signature': `${encodedHeader}.${payload}.`,
      'two parts': `${encodedHeader}.${payload}`,
      'trailing dot': `${token}.`,
      'standard base64 signature': `${encodedHeader}.${payload}.${Buffer.from(signature, 'base64url').toString('base64')}`,
      'alg none': compact({ alg: 'none', typ: 'JWT', kid }, claimsFor(userId, expected)),
      'too large': realToken({ padding: 'x'.repeat(5_000) }),
      garbage: 'not-a-token',
      'inner space': `${encodedHeader}.${payload} .${signature}`,
    };
    const seen = { accepted: 0, refused: 0 };
    for (const [name, candidate] of Object.entries(corpus)) {
      const [verified, checked] = [await viaVerifyToken(candidate), await viaCheck(candidate)];
      expect(checked, name).toEqual(verified);
      seen[verified.accepted ? 'accepted' : 'refused']++;
    }
    // The corpus exercises both sides.
    expect(seen.accepted).toBeGreaterThanOrEqual(6);
    expect(seen.refused).toBeGreaterThanOrEqual(12);
  });

  it('over generated tokens: random edits of a real token and random claims under the real key', async () => {
    const base64url = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'.split(''));
    const edited = fc
      .tuple(fc.nat({ max: token.length - 1 }), fc.option(base64url, { nil: undefined }), fc.boolean())
      .map(([at, char, insert]) => `${token.slice(0, at)}${char ?? ''}${token.slice(insert ? at : at + 1)}`);
    const now = nowSeconds();
    const signed = fc
      .record({
        iss: fc.constantFrom(ISSUER, `${ISSUER}/`, 'https://evil.test'),
        aud: fc.constantFrom(AUDIENCE, 'other'),
        exp: fc.integer({ min: now - 120, max: now + 3_600 }),
        nbf: fc.integer({ min: now - 60, max: now + 120 }),
        sid: fc.option(fc.uuid(), { nil: undefined }),
      })
      .map((claims) => realToken(claims));
    await fc.assert(
      fc.asyncProperty(fc.oneof(edited, signed), async (candidate) => {
        expect(await viaCheck(candidate)).toEqual(await viaVerifyToken(candidate));
      }),
      { numRuns: 60 },
    );
  });
});

describe('EXT_AUTHZ_STRIP_AUTHORIZATION', () => {
  it('true: allowed requests reach the upstream without their Authorization header; false (the default) keeps it', async () => {
    await using stripping = await startTestService({ ...env, LOG_LEVEL: 'silent', EXT_AUTHZ_STRIP_AUTHORIZATION: 'true' });
    const client = new EnvoyAuthzClient(stripping.url);
    try {
      const request = envoyCheckRequest({ headers: { authorization: `Bearer ${token}` } });
      const http = request['attributes']['request']['http']['headers'] as Record<string, string>;

      const stripped = await client.check(request);
      expectAllowed(stripped, { userId, tokenId, sessionId: loginSessionId }, ['authorization']);
      expect(upstreamHeaders(http, stripped)).not.toHaveProperty('authorization');

      const kept = await envoy.check(request);
      expectAllowed(kept, { userId, tokenId, sessionId: loginSessionId }, []);
      expect(upstreamHeaders(http, kept)).toHaveProperty('authorization', `Bearer ${token}`);

      // A denial is a denial either way.
      expectDenied(await client.checkAuthorization('Bearer nope'), INVALID_TOKEN_CHALLENGE);
    } finally {
      client.close();
    }
  });
});

describe('a replica with no signing key loaded', () => {
  it('answers 14 and 503, with no challenge, whatever the request; and allows again once a key signs', async () => {
    // A replica whose clock is behind the one that created the key sees it as not yet active:
    // its key ring holds no signing key (readiness says so too) and it can verify nothing.
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    await using lagging = await startTestService({ ...env, LOG_LEVEL: 'silent', KEY_REFRESH_SECONDS: '3600', KEY_PUBLISH_LEAD_SECONDS: '3600' }, { clock });
    const client = new EnvoyAuthzClient(lagging.url);
    try {
      expectAllowed(await client.checkAuthorization(`Bearer ${token}`), { userId, tokenId, sessionId: loginSessionId });
      offsetMs = -365 * 86_400_000;
      expect(lagging.keys.ready).toBe(false);

      const unavailable = {
        status: { code: grpc.status.UNAVAILABLE, message: '', details: [] },
        http_response: 'denied_response',
        denied_response: { status: { code: 'ServiceUnavailable' }, headers: [], body: '' },
        dynamic_metadata: null,
      };
      const { result, checks, failures } = await countedDuring(async () => [
        await client.checkAuthorization(`Bearer ${token}`),
        await client.checkAuthorization(undefined),
        await client.checkAuthorization('Bearer garbage'),
      ], lagging.adminUrl);
      for (const response of result) expect(response).toEqual(unavailable);
      expect(checks).toEqual({ unavailable: 3 });
      expect(failures).toEqual({});

      offsetMs = 0;
      expectAllowed(await client.checkAuthorization(`Bearer ${token}`), { userId, tokenId, sessionId: loginSessionId });
    } finally {
      client.close();
    }
  });
});

describe('discovery and operations', () => {
  function bufCurl(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(`${ROOT}node_modules/.bin/buf`, ['curl', '--http2-prior-knowledge', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
      });
    });
  }

  it('reflection lists Check and serves its whole import closure: buf curl calls it with no .proto files', async () => {
    const methods = await bufCurl(['--list-methods', service.url]);
    expect(methods).toMatchObject({ code: 0, stderr: '' });
    expect(methods.stdout.split('\n')).toContain('envoy.service.auth.v3.Authorization/Check');
    const body = JSON.stringify({ attributes: { request: { http: { headers: { authorization: `Bearer ${token}` } } } } });
    const called = await bufCurl(['--protocol', 'grpc', '-d', body, `${service.url}/envoy.service.auth.v3.Authorization/Check`]);
    expect(called).toMatchObject({ code: 0, stderr: '' });
    const response = JSON.parse(called.stdout) as Json;
    expect(response['status']).toEqual({});
    expect(response['okResponse']['headers']).toContainEqual({ header: { key: 'x-user-id', value: userId }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: true });
  });

  it('is counted as an RPC like any other, every answer an OK', async () => {
    const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
    const handled = text.split('\n').filter((line) => line.startsWith('grpc_server_handled_total{grpc_type="unary",grpc_service="envoy.service.auth.v3.Authorization",grpc_method="Check"'));
    expect(handled).toEqual([expect.stringMatching(/grpc_code="OK"\} \d+$/)]);
    expect(text).toMatch(/^ext_authz_checks_total\{result="unavailable"\} 0$/m);
  });

  it('never writes a token to the log', () => {
    const rpcLines = logs.lines.filter((line) => line.includes('envoy.service.auth.v3.Authorization/Check'));
    expect(rpcLines.length).toBeGreaterThan(0);
    expect(logs.text()).not.toContain(token.split('.')[2]!);
    expect(logs.text()).not.toContain(token.split('.')[1]!);
  });
});
