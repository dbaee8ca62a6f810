import { Code, ConnectError } from '@connectrpc/connect';
import type { DestinationStream, Logger } from 'pino';
import { systemClock, type Clock } from '../application/ports/clock.port.js';
import type { PasswordHasher } from '../application/ports/password-hasher.port.js';
import { Authenticate } from '../application/use-cases/authenticate.use-case.js';
import { BatchGetUsers } from '../application/use-cases/batch-get-users.use-case.js';
import { ChangePassword } from '../application/use-cases/change-password.use-case.js';
import { DeleteUser } from '../application/use-cases/delete-user.use-case.js';
import { DisableUser } from '../application/use-cases/disable-user.use-case.js';
import { EnableUser } from '../application/use-cases/enable-user.use-case.js';
import { ListSessions } from '../application/use-cases/list-sessions.use-case.js';
import { ListUsers } from '../application/use-cases/list-users.use-case.js';
import { RevokeUserSessions } from '../application/use-cases/revoke-user-sessions.use-case.js';
import { SetPassword } from '../application/use-cases/set-password.use-case.js';
import { UpdateUserProfile } from '../application/use-cases/update-user-profile.use-case.js';
import { GetUser } from '../application/use-cases/get-user.use-case.js';
import { Logout } from '../application/use-cases/logout.use-case.js';
import { RefreshTokens } from '../application/use-cases/refresh-token.use-case.js';
import { RegisterUser } from '../application/use-cases/register-user.use-case.js';
import { VerifyToken } from '../application/use-cases/verify-token.use-case.js';
import type { Config } from '../infrastructure/config/load-config.js';
import { BcryptHasher } from '../infrastructure/crypto/bcrypt.hasher.js';
import { openDatabase, poolGauges, type Database } from '../infrastructure/db/database.js';
import { KnexUnitOfWork, type KnexUnitOfWorkOptions } from '../infrastructure/db/knex-unit-of-work.js';
import { ensureSchema } from '../infrastructure/db/migrator.js';
import { KnexUserRepository } from '../infrastructure/db/user.repository.js';
import { createLogger } from '../infrastructure/observability/logger.js';
import { createMetrics, type Metrics } from '../infrastructure/observability/metrics.js';
import { MetricsSessionTelemetry } from '../infrastructure/observability/metrics-session-telemetry.js';
import { PinoAuditLog } from '../infrastructure/observability/pino-audit-log.js';
import { Readiness } from '../infrastructure/observability/readiness.js';
import { OutboxCommitListener } from '../infrastructure/outbox/outbox-commit-listener.js';
import type { OutboxRelay } from '../infrastructure/outbox/outbox-relay.js';
import { OutboxStore } from '../infrastructure/outbox/outbox.store.js';
import { noLoginThrottle } from '../infrastructure/throttle/pg-login-throttle.js';
import type { KeyRing } from '../infrastructure/tokens/key-ring.js';
import { AdminServer } from '../transport/http/admin-server.js';
import { isHealthWatch, refuseWatchPastCap } from '../transport/connect/health.service.js';
import { ApiServer, type ApiServerOptions } from '../transport/http/api-server.js';
import { readTlsFiles } from '../transport/http/tls-files.js';
import { apiHandler } from './wiring/api-handler.js';
import { warnDevelopmentFallbacks } from './wiring/dev-fallbacks.js';
import { keyRing } from './wiring/keys.js';
import { loginThrottle } from './wiring/login-throttle.js';
import { apiTlsFiles, managementServer, managementTlsFiles, reloadTlsOnChange } from './wiring/management.js';
import { natsConnector, outboxRelay } from './wiring/outbox.js';
import { passwordPolicy } from './wiring/password-policy.js';
import { revocation, sessionCleanup } from './wiring/revocation.js';
import { tokenProvider } from './wiring/token-provider.js';

/** Seams for tests: a log sink, a wrapped hasher, a failing outbox, a fixed clock. */
export interface ServiceOverrides {
  readonly logDestination?: DestinationStream;
  readonly wrapHasher?: (hasher: PasswordHasher) => PasswordHasher;
  readonly outboxFor?: KnexUnitOfWorkOptions['outboxFor'];
  readonly clock?: Clock;
}

export interface StartedPorts {
  readonly apiPort: number;
  readonly adminPort: number;
  /** Undefined when MANAGEMENT_PORT=0 (off). */
  readonly managementPort: number | undefined;
}

/** The whole service, assembled and connected to its database, but not yet listening. */
export interface Service extends AsyncDisposable {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly db: Database;
  readonly readiness: Readiness;
  readonly keys: KeyRing;
  readonly relay: OutboxRelay | undefined;
  /** Connect's handler for every service of the API port (the fast path is the API server's own). */
  readonly apiHandler: ReturnType<typeof apiHandler>['handler'];
  /** Listens on PORT, ADMIN_PORT and MANAGEMENT_PORT (unless 0) and starts the relay; resolves to the ports bound. */
  start(): Promise<StartedPorts>;
  /** Graceful stop: not serving, in-flight calls finish, relay stops, then every resource closes. */
  shutdown(): Promise<void>;
}

const THROTTLE_CLEANUP_MS = 5 * 60_000;
const HEALTH_MONITOR_MS = 2_000;
/** No statement of a request comes near this; migrations (run by `migrate`) may, and get none. */
const SERVE_STATEMENT_TIMEOUT_MS = 15_000;
/** How long before the end of the grace time calls still running are told to stop, so their answers get out. */
const ANSWER_LEFTOVERS_MS = 1_000;

/**
 * The composition root of `serve`: the one place that knows every concrete class. Each
 * resource is put on a disposable stack as it opens, so a failed start closes what it
 * opened and one failing cleanup never skips the others.
 */
export async function buildService(config: Config, overrides: ServiceOverrides = {}): Promise<Service> {
  const logger = createLogger({ level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV, destination: overrides.logDestination });
  const clock = overrides.clock ?? systemClock;
  const metrics = createMetrics();
  warnDevelopmentFallbacks(config, logger, true);
  await using stack = new AsyncDisposableStack();

  const db = openDatabase(config, logger, SERVE_STATEMENT_TIMEOUT_MS);
  stack.defer(() => db.close());
  await ensureSchema(db.knex, config.migrateOnStart);
  metrics.setPoolSource(poolGauges(db.knex));
  const keys = keyRing(config, db, logger, clock);
  await keys.start();
  stack.defer(() => keys.stop());
  metrics.setSigningKeySource({
    activeAgeSeconds: () => {
      const now = clock.now();
      const key = keys.signingKey(now);
      return key && (now.getTime() - key.activatesAt.getTime()) / 1000;
    },
    rotationPeriodSeconds: config.KEY_ROTATION_DAYS * 86_400,
  });
  const bcrypt = await BcryptHasher.start({ cost: config.BCRYPT_COST, workers: config.HASH_WORKERS, queueMax: config.HASH_QUEUE_MAX, metrics });
  stack.defer(() => bcrypt.close());
  const hasher = overrides.wrapHasher?.(bcrypt) ?? bcrypt;

  const outboxStore = new OutboxStore(db.knex);
  metrics.setOutboxSource(outboxStore);
  const nats = config.OUTBOX_RELAY ? natsConnector(config, logger) : undefined;
  if (nats !== undefined) stack.defer(() => nats.close());
  const relay = nats && outboxRelay(config, outboxStore, nats, metrics, logger);
  // Commits in other replicas (or other writers) wake this relay too; the embedded database
  // has no other process, and its commits wake the relay in-process.
  const listener =
    relay && config.DATABASE_URL !== undefined
      ? new OutboxCommitListener({ connectionString: config.DATABASE_URL, onCommit: () => relay.wake(), logger })
      : undefined;
  if (listener !== undefined) stack.defer(() => listener.stop());
  // A stream we cannot use stops start-up here; NATS merely unreachable does not.
  await nats?.whenStarted();

  const throttle = loginThrottle(config, db.knex, metrics);
  if (throttle !== undefined) {
    const timer = setInterval(() => void throttle.cleanup().catch((error: unknown) => logger.warn({ err: error }, 'login throttle cleanup failed')), THROTTLE_CLEANUP_MS).unref();
    stack.defer(() => clearInterval(timer));
  }
  const tokens = tokenProvider(config, keys, clock, logger, metrics);
  // Revocations are loaded before the service answers: a replica started after one refuses it.
  const revocations = revocation(config, db, clock, metrics, logger);
  await revocations.feed.start();
  stack.defer(() => revocations.feed.stop());
  stack.defer(sessionCleanup(db, clock, revocations.horizonSeconds, logger));
  const uow = new KnexUnitOfWork(db.knex, {
    eventSource: config.EVENT_SOURCE,
    onEventsCommitted: () => {
      relay?.wake();
      // Every revocation writes an event. The embedded database (one process) has no LISTEN
      // across processes and needs none: its commits are read back at once.
      if (config.DATABASE_URL === undefined) revocations.feed.resyncSoon();
    },
    outboxFor: overrides.outboxFor,
  });
  const users = new KnexUserRepository(db.knex);
  const audit = new PinoAuditLog(logger.child({ component: 'audit' }));
  const policy = passwordPolicy(config);
  const throttleOrNone = throttle ?? noLoginThrottle;
  const sessionPolicy = { idleSeconds: config.SESSION_IDLE_SECONDS, maxSeconds: config.SESSION_MAX_SECONDS, reuseGraceSeconds: config.REFRESH_REUSE_GRACE_SECONDS };
  const useCases = {
    registerUser: new RegisterUser({ uow, users, hasher, passwordPolicy: policy, clock, audit }),
    authenticate: new Authenticate({ uow, users, hasher, tokens, throttle: throttleOrNone, clock, audit, sessionPolicy }),
    verifyToken: new VerifyToken(tokens, revocations.list),
    refreshToken: new RefreshTokens({ uow, tokens, clock, audit, sessionPolicy, telemetry: new MetricsSessionTelemetry(metrics) }),
    logout: new Logout({ uow, clock, audit }),
    changePassword: new ChangePassword({ uow, users, hasher, throttle: throttleOrNone, passwordPolicy: policy, clock, audit }),
    getUser: new GetUser(users),
    batchGetUsers: new BatchGetUsers(users),
  };
  const managementUseCases = {
    listUsers: new ListUsers(users),
    updateUserProfile: new UpdateUserProfile({ uow, clock }),
    setPassword: new SetPassword({ uow, users, hasher, passwordPolicy: policy, clock }),
    disableUser: new DisableUser({ uow, clock }),
    enableUser: new EnableUser({ uow, clock }),
    deleteUser: new DeleteUser({ uow, clock }),
    listSessions: new ListSessions({ uow, users, clock }),
    revokeUserSessions: new RevokeUserSessions({ uow, clock }),
  };

  const readiness = new Readiness({
    knex: db.knex,
    keysReady: () => keys.ready,
    outboxLag: async () => (await outboxStore.stats()).oldestPendingAgeSeconds,
    maxOutboxLagSeconds: config.READY_MAX_OUTBOX_LAG_SECONDS,
    maxSubscribers: config.HEALTH_WATCH_MAX,
    logger,
    registry: metrics.registry,
  });
  stack.defer(() => readiness.stop());
  const shutdownSignal = new AbortController();
  const { handler, fastPath } = apiHandler({ config, logger, metrics, readiness, useCases, keys, shutdownSignal: shutdownSignal.signal });
  const limits: Omit<ApiServerOptions, 'handler' | 'fastPath' | 'tls'> = {
    maxConcurrentStreams: config.MAX_CONCURRENT_STREAMS,
    maxHeaderBytes: config.MAX_HEADER_BYTES,
    idleTimeoutMs: config.IDLE_TIMEOUT_SECONDS * 1000,
    maxConnections: config.MAX_CONNECTIONS,
    maxOpenStreams: config.MAX_OPEN_STREAMS,
    prefaceTimeoutMs: config.PREFACE_TIMEOUT_SECONDS * 1000,
    requestTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
    onRefused: (kind) => metrics.apiRefused.inc({ kind }),
    answeredEarly: refuseWatchPastCap(readiness),
    isLongLived: isHealthWatch,
  };
  const apiTls = apiTlsFiles(config);
  const api = new ApiServer({ ...limits, handler, fastPath, ...(apiTls !== undefined && { tls: await readTlsFiles(apiTls) }) });
  if (apiTls !== undefined) stack.defer(reloadTlsOnChange(api, apiTls, config, logger, 'api'));
  const management =
    config.MANAGEMENT_PORT === 0
      ? undefined
      : await managementServer({ config, logger, metrics, readiness, useCases: managementUseCases, shutdownSignal: shutdownSignal.signal, limits });
  const managementTls = managementTlsFiles(config);
  if (management !== undefined && managementTls !== undefined) stack.defer(reloadTlsOnChange(management, managementTls, config, logger, 'management'));
  const admin = new AdminServer({ readiness, registry: metrics.registry, jwks: () => keys.published().map((key) => key.jwk) });

  const resources = stack.move();
  async function start() {
    const apiAddress = await api.listen(config.PORT, config.HOST);
    resources.defer(() => api.close(0));
    const managementAddress = await management?.listen(config.MANAGEMENT_PORT, config.HOST);
    if (management !== undefined) resources.defer(() => management.close(0));
    const adminAddress = await admin.listen(config.ADMIN_PORT, config.HOST);
    resources.defer(() => admin.close());
    readiness.monitor(HEALTH_MONITOR_MS);
    relay?.start();
    listener?.start();
    const managementPort = managementAddress?.port;
    logger.info(
      { port: apiAddress.port, adminPort: adminAddress.port, managementPort, managementTls: managementTls !== undefined, apiTls: apiTls !== undefined, relay: relay !== undefined },
      'identity service started',
    );
    return { apiPort: apiAddress.port, adminPort: adminAddress.port, managementPort };
  }

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      // One deadline for the whole drain: in-flight calls first, then the relay's last batch
      // (publishing what those calls committed) in whatever time is left.
      const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
      const deadline = Date.now() + graceMs;
      logger.info({ graceMs }, 'shutting down');
      readiness.startDraining();
      // Calls still running near the end of the grace time are answered UNAVAILABLE (retry
      // elsewhere) while their connections are up: cut connections end calls without a status,
      // which clients report as INTERNAL.
      const abortLeftovers = setTimeout(
        () => shutdownSignal.abort(new ConnectError('the server is shutting down', Code.Unavailable)),
        Math.max(0, graceMs - ANSWER_LEFTOVERS_MS),
      ).unref();
      try {
        await Promise.all([api.close(graceMs), management?.close(graceMs)]);
        clearTimeout(abortLeftovers);
        await relay?.stop(Math.max(0, deadline - Date.now()));
      } finally {
        await resources.disposeAsync();
      }
      logger.info('stopped');
    })());

  return { config, logger, metrics, db, readiness, keys, relay, apiHandler: handler, start, shutdown, [Symbol.asyncDispose]: shutdown };
}

/** Builds the service and opens its ports: what `serve` and the end-to-end tests run. */
export async function startService(config: Config, overrides: ServiceOverrides = {}): Promise<Service & StartedPorts> {
  const service = await buildService(config, overrides);
  try {
    return Object.assign(service, await service.start());
  } catch (error) {
    await service.shutdown().catch(() => undefined);
    throw error;
  }
}
