import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';
import type { SigningKeyStatus } from '../../application/ports/request-authorization.port.js';
import type { Config } from '../../infrastructure/config/load-config.js';
import { prometheusAuthorizationCheckMetrics } from '../../infrastructure/observability/authorization-check-metrics.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { prometheusRpcMetrics } from '../../infrastructure/observability/rpc-metrics.js';
import { callInterceptors } from '../../transport/connect/interceptors/call-interceptors.js';
import { withCallOpenedAt } from '../../transport/connect/interceptors/deadline.interceptor.js';
import { callObserver } from '../../transport/connect/interceptors/observe.interceptor.js';
import { reportInvalidUtf8AsBadField, strictJsonTextDecoder } from '../../transport/connect/invalid-utf8.js';
import { requestContextValues, requestIdentity } from '../../transport/connect/request-context.js';
import { routes } from '../../transport/connect/routes.js';
import { unaryFastPath } from '../../transport/connect/unary-fast-path.js';
import type { IdentityUseCases } from '../../transport/connect/identity.service.js';

export interface ApiHandlerDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly readiness: ReadinessPort;
  readonly useCases: IdentityUseCases;
  /** Whether a signing key is loaded (the key ring): ext_authz Check answers 503 without one. */
  readonly keys: SigningKeyStatus;
  /** Aborted near the end of the shutdown grace time: calls still running answer UNAVAILABLE. */
  readonly shutdownSignal: AbortSignal;
}

/**
 * Every service of the API port behind one Node handler. Interceptors run outside in:
 * observe (logs and metrics see the final code), error mapping (the one place a thrown
 * error becomes a status), deadline.
 */
export function apiHandler(deps: ApiHandlerDeps) {
  const { config, logger, metrics } = deps;
  reportInvalidUtf8AsBadField();
  const served = routes({
    useCases: deps.useCases,
    readiness: deps.readiness,
    healthWatchLifetimeMs: config.HEALTH_WATCH_LIFETIME_SECONDS * 1000,
    extAuthz: {
      keys: deps.keys,
      metrics: prometheusAuthorizationCheckMetrics(metrics),
      realm: config.TOKEN_ISSUER,
      stripAuthorization: config.EXT_AUTHZ_STRIP_AUTHORIZATION,
    },
  });
  const jsonOptions = { textDecoder: strictJsonTextDecoder } as never;
  const identity = requestIdentity({ trustProxy: config.TRUST_PROXY, trustedProxies: config.TRUSTED_PROXIES });
  const contextValues = withCallOpenedAt(requestContextValues(identity));
  // The hot read-only methods log their successes at debug (see ObserveOptions); failures stay at info.
  const quietOnSuccess = new Set(served.fastUnary.map(({ method }) => `${method.parent.typeName}/${method.name}`));
  const observer = callObserver(logger, prometheusRpcMetrics(metrics), { quietOnSuccess });
  const requestTimeoutMs = config.REQUEST_TIMEOUT_SECONDS * 1000;
  const interceptors = callInterceptors({ observer, requestTimeoutMs });
  const connect = connectNodeAdapter({
    routes: served.register,
    readMaxBytes: config.MAX_MESSAGE_BYTES,
    shutdownSignal: deps.shutdownSignal,
    jsonOptions,
    contextValues,
    interceptors,
  });
  // VerifyToken and Check over plain gRPC and Connect unary JSON skip connect-node's per-call pipeline; every other
  // call, and any of theirs the fast path does not handle, goes to Connect (unary-fast-path.ts).
  const fastPath = config.UNARY_FAST_PATH
    ? unaryFastPath({
        methods: served.fastUnary,
        interceptors,
        observer,
        contextValues,
        identity,
        requestTimeoutMs,
        jsonOptions,
        readMaxBytes: config.MAX_MESSAGE_BYTES,
        shutdownSignal: deps.shutdownSignal,
      })
    : undefined;
  return { handler: connect, fastPath };
}
