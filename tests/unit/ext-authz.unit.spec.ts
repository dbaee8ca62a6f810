/**
 * The ext_authz Check handler on an in-memory router (createRouterTransport), with fake ports:
 * the outcomes the real server cannot be pushed into on demand (the use case failing for want
 * of a dependency, a bug), the counting of each outcome, and the parsing of Authorization.
 */
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, createRouterTransport } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/application/application.errors.js';
import type { CheckRefusalReason, AuthorizationCheckResult } from '../../src/application/ports/request-authorization.port.js';
import type { IssuedToken, TokenProvider, VerifiedToken } from '../../src/application/ports/token-provider.port.js';
import { VerifyToken } from '../../src/application/use-cases/verify-token.use-case.js';
import { InvalidTokenError, TokenFailureReason } from '../../src/domain/identity/identity.errors.js';
import { AttributeContext_HttpRequestSchema } from '../../src/gen/envoy/service/auth/v3/attribute_context_pb.js';
import { Authorization, CheckRequestSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { StatusCode } from '../../src/gen/envoy/type/v3/http_status_pb.js';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';
import { authorizationHeader, bearerCredentials, ExtAuthzServiceHandler } from '../../src/transport/connect/ext-authz.service.js';
import { errorMappingInterceptor } from '../../src/transport/connect/interceptors/error-mapping.interceptor.js';

const USER = '0190f3a4-5b6c-7d8e-9f00-112233445566';
const GOOD: VerifiedToken = { userId: USER, tokenId: 'jti-1', issuedAt: new Date(0), expiresAt: new Date(3_600_000) };

/** A token provider that answers `good` with GOOD and anything else with what `refuse` throws. */
function provider(refuse: (token: string) => Error): TokenProvider {
  return {
    issue: () => Promise.reject<IssuedToken>(new Error('not used')),
    verify: (token) => (token === 'good' ? Promise.resolve(GOOD) : Promise.reject(refuse(token))),
  };
}

function harness(options: { refuse?: (token: string) => Error; ready?: boolean; strip?: boolean } = {}) {
  const checked: AuthorizationCheckResult[] = [];
  const refused: CheckRefusalReason[] = [];
  const keys = { ready: options.ready ?? true };
  const handler = new ExtAuthzServiceHandler(
    {
      verifyToken: new VerifyToken(provider(options.refuse ?? (() => new InvalidTokenError(TokenFailureReason.Signature))), { check: () => undefined }),
      keys,
      metrics: { checked: (result) => checked.push(result), refused: (reason) => refused.push(reason) },
    },
    { realm: 'https://id.example/"quoted"\\', stripAuthorization: options.strip ?? false },
  );
  const transport = createRouterTransport((router) => router.service(Authorization, handler), {
    // The server's own mapping of what escapes a handler.
    router: { interceptors: [errorMappingInterceptor] },
  });
  const client = createClient(Authorization, transport);
  const check = (authorization?: string) =>
    client.check({ attributes: { request: { http: { headers: authorization === undefined ? {} : { authorization } } } } });
  const checkDirectly = (authorization: string) =>
    handler.check(create(CheckRequestSchema, { attributes: { request: { http: { headers: { authorization } } } } }));
  return { check, checkDirectly, checked, refused, keys };
}

describe('Check on an in-memory router', () => {
  it('allows a token the use case accepts, and counts it', async () => {
    const h = harness();
    const response = await h.check('Bearer good');
    expect(response.status?.code).toBe(0);
    expect(response.httpResponse.case).toBe('okResponse');
    expect(h.checked).toEqual(['allowed']);
    expect(h.refused).toEqual([]);
  });

  it('escapes the realm as an RFC 7230 quoted-string', async () => {
    const response = await harness().check(undefined);
    expect(response.httpResponse.case === 'deniedResponse' && response.httpResponse.value.headers[0]?.header?.value).toBe('Bearer realm="https://id.example/\\"quoted\\"\\\\"');
  });

  it('answers 503 without asking the use case when no signing key is loaded', async () => {
    let asked = 0;
    const h = harness({ ready: false, refuse: () => (asked++, new InvalidTokenError(TokenFailureReason.Signature)) });
    const response = await h.check('Bearer bad');
    expect(response.status?.code).toBe(Code.Unavailable);
    expect(response.httpResponse).toMatchObject({ case: 'deniedResponse', value: { status: { code: StatusCode.ServiceUnavailable }, headers: [] } });
    expect(asked).toBe(0);
    expect(h.checked).toEqual(['unavailable']);
    h.keys.ready = true;
    expect((await h.check('Bearer good')).status?.code).toBe(0);
  });

  it('answers 503 when the use case reports a dependency unavailable (as a revocation store could)', async () => {
    const h = harness({ refuse: () => new ServiceUnavailableError('the session store') });
    const response = await h.check('Bearer anything');
    expect(response.status?.code).toBe(Code.Unavailable);
    expect(response.httpResponse).toMatchObject({ case: 'deniedResponse', value: { status: { code: StatusCode.ServiceUnavailable } } });
    expect(h.checked).toEqual(['unavailable']);
  });

  it('denies a token that is not UTF-8 (refused by VerifyToken before the provider) and counts it as malformed', async () => {
    const h = harness();
    // Called directly: a lone surrogate is what the wire decoder makes of bytes that are not UTF-8.
    const response = await h.checkDirectly('Bearer \uD800');
    expect(response.status?.code).toBe(Code.Unauthenticated);
    expect(h.checked).toEqual(['denied']);
    expect(h.refused).toEqual(['malformed']);
  });

  it('leaves the counting of a refused token to VerifyToken, and counts a missing one itself', async () => {
    const h = harness();
    await h.check('Bearer bad');
    await h.check(undefined);
    expect(h.checked).toEqual(['denied', 'denied']);
    expect(h.refused).toEqual(['missing']);
  });

  it('lets a bug surface as INTERNAL rather than answer it as a denial', async () => {
    const h = harness({ refuse: () => new TypeError('a bug') });
    await expect(h.check('Bearer bad')).rejects.toMatchObject({ code: Code.Internal });
    expect(h.checked).toEqual([]);
    const error = await h.check('Bearer bad').catch((caught: unknown) => caught);
    expect(ConnectError.from(error).rawMessage).toBe('internal error');
  });

  it('removes authorization upstream only when asked to', async () => {
    const kept = await harness().check('Bearer good');
    const stripped = await harness({ strip: true }).check('Bearer good');
    expect(kept.httpResponse.case === 'okResponse' && kept.httpResponse.value.headersToRemove).toEqual([]);
    expect(stripped.httpResponse.case === 'okResponse' && stripped.httpResponse.value.headersToRemove).toEqual(['authorization']);
  });
});

describe('bearerCredentials of authorizationHeader', () => {
  const http = (headers: Record<string, string>) => create(AttributeContext_HttpRequestSchema, { headers });
  const credentials = (request: ReturnType<typeof http> | undefined) => bearerCredentials(authorizationHeader(request));

  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['BEARER   abc  ', 'abc'],
    ['Bearer\tabc', 'abc'],
    ['  Bearer abc', 'abc'],
    ['Bearer', ''],
    ['Bearer ', ''],
    ['Bearer a b', 'a b'],
  ])('%j carries the token %j', (value, token) => {
    expect(credentials(http({ authorization: value }))).toEqual({ token });
  });

  it.each(['Basic YW5uOng=', 'Bearerabc', 'abc', '', 'Token abc', 'DPoP abc'])('%j carries no Bearer token', (value) => {
    expect(credentials(http({ authorization: value }))).toBeUndefined();
  });

  it('reads only the lower-case key, as Envoy sends it', () => {
    expect(credentials(http({ Authorization: 'Bearer abc' }))).toBeUndefined();
    expect(credentials(undefined)).toBeUndefined();
  });

  it('reads header_map when headers is empty, joining repeated values as Envoy does in headers', () => {
    const raw = (...values: string[]) =>
      create(AttributeContext_HttpRequestSchema, { headerMap: { headers: values.map((value) => ({ key: 'authorization', rawValue: Buffer.from(value) })) } });
    expect(credentials(raw('Bearer abc'))).toEqual({ token: 'abc' });
    expect(credentials(raw('Bearer abc', 'Bearer def'))).toEqual({ token: 'abc,Bearer def' });
  });
});

describe('EXT_AUTHZ_STRIP_AUTHORIZATION', () => {
  it('defaults to false and takes true', () => {
    expect(loadConfig({}).EXT_AUTHZ_STRIP_AUTHORIZATION).toBe(false);
    expect(loadConfig({ EXT_AUTHZ_STRIP_AUTHORIZATION: 'true' }).EXT_AUTHZ_STRIP_AUTHORIZATION).toBe(true);
  });

  it('refuses anything but a boolean, naming the variable', () => {
    expect(() => loadConfig({ EXT_AUTHZ_STRIP_AUTHORIZATION: 'maybe' })).toThrow(/EXT_AUTHZ_STRIP_AUTHORIZATION/);
  });
});
