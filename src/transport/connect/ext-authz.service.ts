import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type {
  AuthorizationCheckMetrics,
  AuthorizationCheckResult,
  SigningKeyStatus,
} from '../../application/ports/request-authorization.port.js';
import type { VerifiedToken } from '../../application/ports/token-provider.port.js';
import type { VerifyToken } from '../../application/use-cases/verify-token.use-case.js';
import { HeaderValueOption_HeaderAppendAction } from '../../gen/envoy/config/core/v3/base_pb.js';
import type { AttributeContext_HttpRequest } from '../../gen/envoy/service/auth/v3/attribute_context_pb.js';
import {
  CheckResponseSchema,
  type Authorization,
  type CheckRequest,
  type CheckResponse,
} from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { StatusCode as HttpStatusCode } from '../../gen/envoy/type/v3/http_status_pb.js';
import { toCheckFailure } from './error-mapper.js';
import { deepFreeze, frozenAnswers } from './frozen-answers.js';

/** The gRPC codes Check puts in `CheckResponse.status` (google.rpc.Status). */
const OK = 0;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

/** The headers an allowed request reaches the upstream with; any copies the client sent are replaced. */
const USER_ID_HEADER = 'x-user-id';
const SESSION_ID_HEADER = 'x-session-id';
const TOKEN_ID_HEADER = 'x-token-id';

export interface ExtAuthzOptions {
  /** TOKEN_ISSUER: the realm of the `www-authenticate` challenge. */
  readonly realm: string;
  /** EXT_AUTHZ_STRIP_AUTHORIZATION: allowed requests go upstream without their Authorization header. */
  readonly stripAuthorization: boolean;
}

export interface ExtAuthzDeps {
  /** The same use case as IdentityService/VerifyToken, so both accept exactly the same tokens. */
  readonly verifyToken: VerifyToken;
  readonly keys: SigningKeyStatus;
  readonly metrics: AuthorizationCheckMetrics;
}

/** What the Authorization header holds: no Bearer credentials at all, or the text after `Bearer`. */
type Credentials = { readonly token: string } | undefined;

const header = (key: string, value: string) => ({
  header: { key, value },
  appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  // An empty x-session-id must still replace the client's copy, not be dropped as empty.
  keepEmptyValue: true,
});

/** RFC 7230 quoted-string: a backslash before `"` and `\`. */
const quoted = (text: string) => `"${text.replace(/["\\]/g, '\\$&')}"`;

/**
 * envoy.service.auth.v3.Authorization/Check: the Bearer token of the request Envoy (or an
 * Istio sidecar) is about to forward, verified by VerifyToken, answered from memory. Every
 * expected outcome is a gRPC OK carrying the decision (contract, part 2): allowed (status 0,
 * identity headers for the upstream), denied (status 16, HTTP 401 with an RFC 6750 challenge
 * and nothing that says why) or unavailable (status 14, HTTP 503: no signing key loaded).
 */
export class ExtAuthzServiceHandler implements ServiceImpl<typeof Authorization> {
  private readonly noToken: CheckResponse;
  private readonly invalidToken: CheckResponse;
  private readonly unavailable: CheckResponse;
  private readonly allowed: (token: VerifiedToken) => CheckResponse;

  constructor(
    private readonly deps: ExtAuthzDeps,
    options: ExtAuthzOptions,
  ) {
    const challenge = `Bearer realm=${quoted(options.realm)}`;
    // RFC 6750 §3.1: a request without a token (or with another scheme) gets no error code.
    this.noToken = denial(UNAUTHENTICATED, HttpStatusCode.Unauthorized, [header('www-authenticate', challenge)]);
    this.invalidToken = denial(UNAUTHENTICATED, HttpStatusCode.Unauthorized, [header('www-authenticate', `${challenge}, error="invalid_token"`)]);
    this.unavailable = denial(UNAVAILABLE, HttpStatusCode.ServiceUnavailable, []);
    const headersToRemove = options.stripAuthorization ? ['authorization'] : [];
    // A cached token's answer is built once (see frozenAnswers).
    this.allowed = frozenAnswers((token: VerifiedToken) =>
      create(CheckResponseSchema, {
        status: { code: OK },
        httpResponse: {
          case: 'okResponse',
          value: { headers: [header(USER_ID_HEADER, token.userId), header(SESSION_ID_HEADER, token.sessionId ?? ''), header(TOKEN_ID_HEADER, token.tokenId)], headersToRemove },
        },
      }),
    );
  }

  check(req: CheckRequest): Promise<CheckResponse> {
    return this.checkAuthorization(authorizationHeader(req.attributes?.request?.http));
  }

  /** Check's answer for a request whose Authorization header is `authorization` (undefined: it has none). */
  async checkAuthorization(authorization: string | undefined): Promise<CheckResponse> {
    const token = this.tokenOrAnswer(authorization);
    if (typeof token !== 'string') return token;
    try {
      return this.allowedFor(await this.deps.verifyToken.execute(token));
    } catch (error) {
      return this.refusal(error);
    }
  }

  /**
   * checkAuthorization's answer when it is known without waiting (no key, no token, a
   * malformed or cached one: see VerifyToken.executeNow); undefined, having counted nothing,
   * when only checkAuthorization can tell.
   */
  checkAuthorizationNow(authorization: string | undefined): CheckResponse | undefined {
    const token = this.tokenOrAnswer(authorization);
    if (typeof token !== 'string') return token;
    let verified: VerifiedToken | undefined;
    try {
      verified = this.deps.verifyToken.executeNow(token);
    } catch (error) {
      return this.refusal(error);
    }
    return verified === undefined ? undefined : this.allowedFor(verified);
  }

  /** The Bearer token to verify, or the answer when there is none to verify. */
  private tokenOrAnswer(authorization: string | undefined): string | CheckResponse {
    if (!this.deps.keys.ready) return this.answer('unavailable', this.unavailable);
    const credentials = bearerCredentials(authorization);
    if (credentials !== undefined) return credentials.token;
    this.deps.metrics.refused('missing');
    return this.answer('denied', this.noToken);
  }

  private allowedFor(verified: VerifiedToken): CheckResponse {
    return this.answer('allowed', this.allowed(verified));
  }

  /** A token refused (denied) or not verifiable now (unavailable); anything else is thrown on, to be mapped. */
  private refusal(error: unknown): CheckResponse {
    const failure = toCheckFailure(error);
    if (failure === undefined) throw error;
    if (failure.uncounted !== undefined) this.deps.metrics.refused(failure.uncounted);
    return failure.result === 'denied' ? this.answer('denied', this.invalidToken) : this.answer('unavailable', this.unavailable);
  }

  private answer(result: AuthorizationCheckResult, response: CheckResponse): CheckResponse {
    this.deps.metrics.checked(result);
    return response;
  }
}

function denial(code: number, httpStatus: HttpStatusCode, headers: ReturnType<typeof header>[]): CheckResponse {
  return deepFreeze(
    create(CheckResponseSchema, {
      status: { code },
      httpResponse: { case: 'deniedResponse', value: { status: { code: httpStatus }, headers } },
    }),
  );
}

/**
 * The Bearer credentials in an Authorization header value (RFC 6750 §2.1), the scheme matched
 * case-insensitively. `Bearer` with nothing after it is a token presented, and refused as
 * malformed by VerifyToken; another scheme is no token.
 */
export function bearerCredentials(authorization: string | undefined): Credentials {
  if (authorization === undefined) return undefined;
  const credentials = authorization.trim();
  const space = firstBlank(credentials);
  if (!isBearer(credentials, space === -1 ? credentials.length : space)) return undefined;
  return { token: space === -1 ? '' : credentials.slice(space + 1).trim() };
}

const BEARER = 'bearer';

/** Where the first space or tab is, -1 if none: the end of the scheme. */
function firstBlank(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x20 || code === 0x09) return i;
  }
  return -1;
}

/**
 * Whether the first `length` characters spell `bearer` in any case, as toLowerCase compares
 * them, without making the lower-cased copy on every Check: every letter of it is a
 * lower-case ASCII letter, and OR 0x20 maps only its upper case onto it.
 */
function isBearer(text: string, length: number): boolean {
  if (length !== BEARER.length) return false;
  for (let i = 0; i < length; i++) if ((text.charCodeAt(i) | 0x20) !== BEARER.charCodeAt(i)) return false;
  return true;
}

const utf8 = new TextDecoder();

/**
 * The Authorization header of the request Envoy is about to forward. Envoy sends headers
 * lower-cased in `headers`, several values of one header joined with a comma (a second
 * Authorization header thus spoils the token); with `encode_raw_headers` it sends `header_map`
 * instead, with the values as bytes, whose Authorization entries are joined the same way.
 */
export function authorizationHeader(http: AttributeContext_HttpRequest | undefined): string | undefined {
  if (http === undefined) return undefined;
  const value = http.headers['authorization'];
  if (value !== undefined) return value;
  const raw = http.headerMap?.headers.filter((entry) => entry.key.toLowerCase() === 'authorization') ?? [];
  if (raw.length === 0) return undefined;
  return raw.map((entry) => (entry.rawValue.length > 0 ? utf8.decode(entry.rawValue) : entry.value)).join(',');
}
