import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';
import type { Config } from '../../infrastructure/config/load-config.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { prometheusRpcMetrics } from '../../infrastructure/observability/rpc-metrics.js';
import { callInterceptors } from '../../transport/connect/interceptors/call-interceptors.js';
import { withCallOpenedAt } from '../../transport/connect/interceptors/deadline.interceptor.js';
import { callObserver } from '../../transport/connect/interceptors/observe.interceptor.js';
import { managementAuditInterceptor } from '../../transport/connect/interceptors/management-audit.interceptor.js';
import { strictJsonTextDecoder } from '../../transport/connect/invalid-utf8.js';
import { allowedCallersInterceptor, callerResolver } from '../../transport/connect/management-caller.js';
import type { ManagementUseCases } from '../../transport/connect/management.service.js';
import { requestContextValues, requestIdentity } from '../../transport/connect/request-context.js';
import { managementRoutes } from '../../transport/connect/routes.js';
import { ApiServer, type ApiServerOptions } from '../../transport/http/api-server.js';
import { readTlsFiles, watchTlsFiles, type TlsFiles } from '../../transport/http/tls-files.js';

export interface ManagementDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly readiness: ReadinessPort;
  readonly useCases: ManagementUseCases;
  readonly shutdownSignal: AbortSignal;
  /** The API server's limits (connections, streams, timeouts): the same hardening on both ports. */
  readonly limits: Omit<ApiServerOptions, 'handler' | 'tls'>;
}

export function managementTlsFiles(config: Config): TlsFiles | undefined {
  const { MANAGEMENT_TLS_CERT_FILE: cert, MANAGEMENT_TLS_KEY_FILE: key, MANAGEMENT_TLS_CLIENT_CA_FILE: clientCa } = config;
  return cert !== undefined && key !== undefined && clientCa !== undefined ? { cert, key, clientCa } : undefined;
}

export function apiTlsFiles(config: Config): TlsFiles | undefined {
  const { TLS_CERT_FILE: cert, TLS_KEY_FILE: key } = config;
  return cert !== undefined && key !== undefined ? { cert, key } : undefined;
}

/**
 * The management port: UserManagementService with health and reflection, behind the API
 * port's interceptors plus the audit line (outermost, so it sees every outcome) and the
 * allowed-callers check; over mutual TLS when its files are configured. Not listening yet.
 */
export async function managementServer(deps: ManagementDeps): Promise<ApiServer> {
  const { config, logger, metrics } = deps;
  const callers = callerResolver({ trustProxy: config.TRUST_PROXY, trustedProxies: config.TRUSTED_PROXIES });
  const requestValues = withCallOpenedAt(requestContextValues(requestIdentity({ trustProxy: config.TRUST_PROXY, trustedProxies: config.TRUSTED_PROXIES })));
  const handler = connectNodeAdapter({
    routes: managementRoutes({ useCases: deps.useCases, readiness: deps.readiness, healthWatchLifetimeMs: config.HEALTH_WATCH_LIFETIME_SECONDS * 1000 }),
    readMaxBytes: config.MAX_MESSAGE_BYTES,
    shutdownSignal: deps.shutdownSignal,
    jsonOptions: { textDecoder: strictJsonTextDecoder } as never,
    contextValues: (req) => callers(req, requestValues(req)),
    interceptors: [
      managementAuditInterceptor(logger.child({ component: 'audit' })),
      ...callInterceptors({
        observer: callObserver(logger, prometheusRpcMetrics(metrics)),
        requestTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
        guards: [allowedCallersInterceptor(config.MANAGEMENT_ALLOWED_CALLERS)],
      }),
    ],
  });
  const files = managementTlsFiles(config);
  return new ApiServer({ ...deps.limits, handler, ...(files !== undefined && { tls: await readTlsFiles(files) }) });
}

/** Re-reads a TLS listener's files when they change (cert-manager rotations); returns the stop function. */
export function reloadTlsOnChange(server: ApiServer, files: TlsFiles, config: Config, logger: Logger, port: string): () => void {
  return watchTlsFiles({
    files,
    intervalMs: config.TLS_RELOAD_SECONDS * 1000,
    apply: (tls) => server.setSecureContext(tls),
    onReloaded: () => logger.info({ port }, 'TLS certificate reloaded'),
    onFailed: (error) => logger.warn({ port, err: error }, 'TLS certificate files changed but cannot be used yet; the previous certificate stays'),
  });
}
