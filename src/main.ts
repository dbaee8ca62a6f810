#!/usr/bin/env node
/**
 * The composition root: the one place that knows every concrete class. It wires the layers
 * for each command of the `identity` CLI, and `startService` is what tests start in-process.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Code, ConnectError } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { DestinationStream, Logger } from 'pino';
import { systemClock, type Clock } from './application/ports/clock.port.js';
import { Authenticate } from './application/use-cases/authenticate.use-case.js';
import { RegisterUser } from './application/use-cases/register-user.use-case.js';
import { VerifyToken } from './application/use-cases/verify-token.use-case.js';
import { PasswordPolicy } from './domain/identity/password-policy.js';
import type { PasswordHasher } from './application/ports/password-hasher.port.js';
import { PlainPassword } from './domain/identity/value-objects/plain-password.value-object.js';
import { ConfigError, describeConfig, loadConfig, type Config } from './infrastructure/config/load-config.js';
import { BcryptHasher } from './infrastructure/crypto/bcrypt.hasher.js';
import { openDatabase, poolGauges, type Database } from './infrastructure/db/database.js';
import { KnexUnitOfWork, type KnexUnitOfWorkOptions } from './infrastructure/db/knex-unit-of-work.js';
import { ensureSchema, migrateDown, migrateUp, migrationStatus } from './infrastructure/db/migrator.js';
import { KnexUserRepository } from './infrastructure/db/user.repository.js';
import { SEED_PASSWORD, seedUsers } from './infrastructure/db/user-seeder.js';
import { NatsConnector } from './infrastructure/nats/nats-connector.js';
import { createLogger } from './infrastructure/observability/logger.js';
import { createMetrics, type Metrics } from './infrastructure/observability/metrics.js';
import { PinoAuditLog } from './infrastructure/observability/pino-audit-log.js';
import { Readiness } from './infrastructure/observability/readiness.js';
import { OutboxCommitListener } from './infrastructure/outbox/outbox-commit-listener.js';
import { OutboxRelay } from './infrastructure/outbox/outbox-relay.js';
import { OutboxStore } from './infrastructure/outbox/outbox.store.js';
import { PgLoginThrottle, noLoginThrottle } from './infrastructure/throttle/pg-login-throttle.js';
import { loadDevKeyEncryptionKey } from './infrastructure/tokens/dev-key-encryption-key.js';
import { keyState } from './infrastructure/tokens/key-lifecycle.js';
import { KeyEncryption } from './infrastructure/tokens/key-encryption.js';
import { KeyManager, RotationPendingError } from './infrastructure/tokens/key-manager.js';
import { KeyRing } from './infrastructure/tokens/key-ring.js';
import { JwtSigner } from './infrastructure/tokens/jwt-signer.js';
import { JwtTokenProvider } from './infrastructure/tokens/jwt-token-provider.js';
import { JwtVerifier } from './infrastructure/tokens/jwt-verifier.js';
import { SigningKeyStore } from './infrastructure/tokens/signing-key.store.js';
import { buildProgram, ExitCode, type CliHandlers } from './transport/cli/program.js';
import { deadlineInterceptor } from './transport/connect/interceptors/deadline.interceptor.js';
import { observeInterceptor } from './transport/connect/interceptors/observe.interceptor.js';
import { reportInvalidUtf8AsBadField, strictJsonTextDecoder } from './transport/connect/invalid-utf8.js';
import { requestContextValues } from './transport/connect/request-context.js';
import { routes } from './transport/connect/routes.js';
import { AdminServer } from './transport/http/admin-server.js';
import { ApiServer } from './transport/http/api-server.js';

/** Seams for tests: a log sink, a wrapped hasher, a failing outbox, a fixed clock. */
export interface ServiceOverrides {
  readonly logDestination?: DestinationStream;
  readonly wrapHasher?: (hasher: PasswordHasher) => PasswordHasher;
  readonly outboxFor?: KnexUnitOfWorkOptions['outboxFor'];
  readonly clock?: Clock;
}

export interface Service {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly db: Database;
  readonly readiness: Readiness;
  readonly keys: KeyRing;
  readonly relay: OutboxRelay | undefined;
  readonly apiPort: number;
  readonly adminPort: number;
  /** Graceful stop: not serving, in-flight calls finish, relay stops, NATS drains, pool closes. */
  shutdown(): Promise<void>;
}

const MIN_NODE_MAJOR = 24;
const THROTTLE_CLEANUP_MS = 5 * 60_000;
const HEALTH_MONITOR_MS = 2_000;
const DUPLICATE_SIGNAL_MS = 1_000;
const SHUTDOWN_OVERRUN_MS = 5_000;
const FLUSH_NATS_WAIT_MS = 30_000;
/** No statement of a request comes near this; migrations (run by `migrate`) may, and get none. */
const SERVE_STATEMENT_TIMEOUT_MS = 15_000;
/** How long before the end of the grace time calls still running are told to stop, so their answers get out. */
const ANSWER_LEFTOVERS_MS = 1_000;

function commonPasswords(): ReadonlySet<string> {
  return new Set((dictionary['passwords-common'] ?? []).map((word) => word.toLowerCase()));
}

/**
 * One warning, at start, for every development fallback in use: the embedded database and
 * a generated key encryption key, both kept in DATA_DIR.
 */
function warnDevelopmentFallbacks(config: Config, logger: Logger, usesKeys: boolean): void {
  const fallbacks = [
    ...(config.embeddedDatabase ? ['the embedded PGlite database (DATABASE_URL is not set)'] : []),
    ...(usesKeys && config.KEY_ENCRYPTION_KEY === undefined ? ['a generated key encryption key (KEY_ENCRYPTION_KEY is not set)'] : []),
  ];
  if (fallbacks.length === 0) return;
  const dataDir = resolve(config.DATA_DIR);
  logger.warn({ dataDir, fallbacks }, `for development only: ${fallbacks.join(' and ')}, kept in ${dataDir}; never run a shared deployment this way`);
}

function keyParts(config: Config, db: Database, logger: Logger, clock: Clock) {
  const kek = config.KEY_ENCRYPTION_KEY !== undefined ? Buffer.from(config.KEY_ENCRYPTION_KEY, 'base64') : loadDevKeyEncryptionKey(config.DATA_DIR);
  const encryption = new KeyEncryption(kek);
  const store = new SigningKeyStore(db.knex);
  const algorithm = config.TOKEN_ALGORITHMS[0] ?? 'ES256';
  const manager = new KeyManager(store, encryption, {
    algorithm,
    publishLeadSeconds: config.KEY_PUBLISH_LEAD_SECONDS,
    tokenTtlSeconds: config.TOKEN_TTL_SECONDS,
    clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
    rotationDays: config.KEY_ROTATION_DAYS,
  });
  const ring = new KeyRing(store, encryption, manager, { refreshSeconds: config.KEY_REFRESH_SECONDS, algorithms: config.TOKEN_ALGORITHMS, logger, clock });
  return { store, manager, ring };
}

function natsConnector(config: Config, logger: Logger): NatsConnector {
  return new NatsConnector({
    url: config.NATS_URL,
    logger,
    stream: {
      name: config.NATS_STREAM,
      subjects: [`${config.NATS_SUBJECT_PREFIX}.>`],
      duplicateWindowSeconds: config.NATS_DUPLICATE_WINDOW_SECONDS,
    },
  });
}

function outboxRelay(config: Config, store: OutboxStore, nats: NatsConnector, metrics: Metrics, logger: Logger): OutboxRelay {
  return new OutboxRelay(
    { store, nats, metrics, logger: logger.child({ component: 'outbox-relay' }) },
    {
      relayId: `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
      streamName: config.NATS_STREAM,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      batchSize: config.OUTBOX_BATCH_SIZE,
      maxInFlight: config.OUTBOX_MAX_IN_FLIGHT,
      pollMs: config.OUTBOX_POLL_MS,
      maxAttempts: config.OUTBOX_MAX_ATTEMPTS,
      backoffBaseMs: config.OUTBOX_BACKOFF_BASE_MS,
      backoffMaxMs: config.OUTBOX_BACKOFF_MAX_MS,
      leaseSeconds: config.OUTBOX_LEASE_SECONDS,
      retentionHours: config.OUTBOX_RETENTION_HOURS,
    },
  );
}

/** Opens everything, listens on PORT and ADMIN_PORT, and starts the relay. */
export async function startService(config: Config, overrides: ServiceOverrides = {}): Promise<Service> {
  const logger = createLogger({ level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV, destination: overrides.logDestination });
  const clock = overrides.clock ?? systemClock;
  const metrics = createMetrics();
  warnDevelopmentFallbacks(config, logger, true);
  const db = openDatabase(config, logger, SERVE_STATEMENT_TIMEOUT_MS);
  const cleanups: (() => Promise<void> | void)[] = [() => db.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    await ensureSchema(db.knex, config.migrateOnStart);
    metrics.setPoolSource(poolGauges(db.knex));
    const keys = keyParts(config, db, logger, clock).ring;
    await keys.start();
    cleanups.push(() => keys.stop());
    const bcrypt = await BcryptHasher.start({ cost: config.BCRYPT_COST, workers: config.HASH_WORKERS, queueMax: config.HASH_QUEUE_MAX, metrics });
    cleanups.push(() => bcrypt.close());
    const hasher = overrides.wrapHasher?.(bcrypt) ?? bcrypt;

    const outboxStore = new OutboxStore(db.knex);
    metrics.setOutboxSource(outboxStore);
    const nats = config.OUTBOX_RELAY ? natsConnector(config, logger) : undefined;
    const relay = nats && outboxRelay(config, outboxStore, nats, metrics, logger);
    if (nats !== undefined) cleanups.push(() => nats.close());
    // Commits in other replicas (or other writers) wake this relay too; the embedded database
    // has no other process, and its commits wake the relay in-process.
    const listener =
      relay && config.DATABASE_URL !== undefined
        ? new OutboxCommitListener({ connectionString: config.DATABASE_URL, onCommit: () => relay.wake(), logger })
        : undefined;
    if (listener !== undefined) cleanups.push(() => listener.stop());
    // A stream we cannot use stops start-up here; NATS merely unreachable does not.
    await nats?.whenStarted();

    const tokens = new JwtTokenProvider({
      keys,
      clock,
      logger,
      metrics,
      cacheSize: config.TOKEN_CACHE_SIZE,
      clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
      signer: new JwtSigner({ issuer: config.TOKEN_ISSUER, audience: config.TOKEN_AUDIENCE, ttlSeconds: config.TOKEN_TTL_SECONDS }),
      verifier: new JwtVerifier({
        algorithms: config.TOKEN_ALGORITHMS,
        issuer: config.TOKEN_ISSUER,
        audience: config.TOKEN_AUDIENCE,
        clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
        findKey: (kid) => keys.publishedKey(kid),
      }),
    });
    const throttle = config.LOGIN_THROTTLE
      ? new PgLoginThrottle(db.knex, {
          freeAttempts: config.LOGIN_FREE_ATTEMPTS,
          clientFreeAttempts: config.LOGIN_CLIENT_FREE_ATTEMPTS,
          windowSeconds: config.LOGIN_WINDOW_SECONDS,
          maxDelaySeconds: config.LOGIN_MAX_DELAY_SECONDS,
          metrics,
        })
      : undefined;
    if (throttle !== undefined) {
      const timer = setInterval(() => void throttle.cleanup().catch((error: unknown) => logger.warn({ err: error }, 'login throttle cleanup failed')), THROTTLE_CLEANUP_MS).unref();
      cleanups.push(() => clearInterval(timer));
    }

    const uow = new KnexUnitOfWork(db.knex, { eventSource: config.EVENT_SOURCE, onEventsCommitted: () => relay?.wake(), outboxFor: overrides.outboxFor });
    const users = new KnexUserRepository(db.knex);
    const audit = new PinoAuditLog(logger.child({ component: 'audit' }));
    const passwordPolicy = new PasswordPolicy({ minLength: config.PASSWORD_MIN_LENGTH, commonPasswords: commonPasswords() });
    const useCases = {
      registerUser: new RegisterUser({ uow, users, hasher, passwordPolicy, clock, audit }),
      authenticate: new Authenticate({ uow, users, hasher, tokens, throttle: throttle ?? noLoginThrottle, clock, audit }),
      verifyToken: new VerifyToken(tokens),
    };

    const readiness = new Readiness({
      knex: db.knex,
      keysReady: () => keys.ready,
      outboxLag: async () => (await outboxStore.stats()).oldestPendingAgeSeconds,
      maxOutboxLagSeconds: config.READY_MAX_OUTBOX_LAG_SECONDS,
    });
    readiness.monitor(HEALTH_MONITOR_MS);
    cleanups.push(() => readiness.stop());

    reportInvalidUtf8AsBadField();
    const shutdownSignal = new AbortController();
    const handler = connectNodeAdapter({
      routes: routes({ useCases, readiness }),
      readMaxBytes: config.MAX_MESSAGE_BYTES,
      shutdownSignal: shutdownSignal.signal,
      jsonOptions: { textDecoder: strictJsonTextDecoder } as never,
      contextValues: requestContextValues(config.TRUST_PROXY),
      interceptors: [observeInterceptor(logger, metrics), deadlineInterceptor(config.REQUEST_TIMEOUT_SECONDS * 1000)],
    });
    const api = new ApiServer({
      handler,
      maxConcurrentStreams: config.MAX_CONCURRENT_STREAMS,
      maxHeaderBytes: config.MAX_HEADER_BYTES,
      idleTimeoutMs: config.IDLE_TIMEOUT_SECONDS * 1000,
    });
    const admin = new AdminServer({ readiness, registry: metrics.registry, jwks: () => keys.published().map((key) => key.jwk) });
    const apiAddress = await api.listen(config.PORT, config.HOST);
    cleanups.push(() => api.close(0));
    const adminAddress = await admin.listen(config.ADMIN_PORT, config.HOST);
    cleanups.push(() => admin.close());
    relay?.start();
    listener?.start();
    logger.info({ port: apiAddress.port, adminPort: adminAddress.port, relay: relay !== undefined }, 'identity service started');

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
        await api.close(graceMs);
        clearTimeout(abortLeftovers);
        await relay?.stop(Math.max(0, deadline - Date.now()));
        await closeAll();
        logger.info('stopped');
      })());
    return { config, logger, metrics, db, readiness, keys, relay, apiPort: apiAddress.port, adminPort: adminAddress.port, shutdown };
  } catch (error) {
    await closeAll().catch(() => undefined);
    throw error;
  }
}

interface DatabaseWork {
  /** The command reads or writes signing keys (and so needs the key encryption key). */
  readonly usesKeys?: boolean;
  /** The command manages the schema itself: no migrations on start, none required. */
  readonly migrating?: boolean;
}

/** Runs `work` with a database (and a logger), closing it afterwards. */
async function withDatabase<T>(config: Config, work: (db: Database, logger: Logger) => Promise<T>, options: DatabaseWork = {}): Promise<T> {
  const logger = createLogger({ level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV, destination: process.stderr });
  warnDevelopmentFallbacks(config, logger, options.usesKeys === true);
  const db = openDatabase(config, logger);
  try {
    if (options.migrating !== true) await ensureSchema(db.knex, config.migrateOnStart);
    return await work(db, logger);
  } finally {
    await db.close();
  }
}

const print = (value: unknown): void => {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
};

/** The commands, wired to the configuration. */
function cliHandlers(config: Config): CliHandlers {
  return {
    async serve() {
      const service = await startService(config);
      let firstSignalAt: number | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        // A terminal's Ctrl-C reaches every process of the group, and a wrapper (npm, tsx)
        // relays it as well: copies within a second are one request to stop, not two.
        if (firstSignalAt !== undefined && Date.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
        if (firstSignalAt !== undefined) {
          service.logger.warn({ signal }, 'second signal: exiting now');
          process.exit(ExitCode.Failure);
        }
        firstSignalAt = Date.now();
        // Should closing NATS or the pool hang past the grace time, do not wait for ever.
        setTimeout(() => {
          service.logger.error('shutdown overran the grace time: exiting now');
          process.exit(ExitCode.Failure);
        }, service.config.SHUTDOWN_GRACE_SECONDS * 1000 + SHUTDOWN_OVERRUN_MS).unref();
        service.shutdown().then(
          () => process.exit(ExitCode.Ok),
          (error: unknown) => {
            service.logger.error({ err: error }, 'shutdown failed');
            process.exit(ExitCode.Failure);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // A bug that escapes every handler ends the process, as Node would, but as a log line an
      // operator's tooling can read rather than a bare stack on stderr.
      process.on('unhandledRejection', (reason) => {
        service.logger.fatal({ err: reason }, 'unhandled rejection: exiting');
        process.exit(ExitCode.Failure);
      });
    },
    migrate: (direction) =>
      withDatabase(
        config,
        async (db) => {
          if (direction === 'up') print({ applied: await migrateUp(db.knex) });
          else if (direction === 'down') print({ reverted: await migrateDown(db.knex) });
          else print(await migrationStatus(db.knex));
        },
        { migrating: true },
      ),
    outboxFlush: () =>
      withDatabase(config, async (db, logger) => {
        const nats = natsConnector(config, logger);
        try {
          const store = new OutboxStore(db.knex);
          const result = await outboxRelay(config, store, nats, createMetrics(), logger).flush(FLUSH_NATS_WAIT_MS);
          const stats = await store.stats();
          print({ ...result, ...stats });
          return result.failed > 0 || stats.dead > 0 ? ExitCode.Failure : ExitCode.Ok;
        } finally {
          await nats.close();
        }
      }),
    outboxStats: () => withDatabase(config, async (db) => print(await new OutboxStore(db.knex).stats())),
    outboxRetryDead: () => withDatabase(config, async (db) => print({ requeued: await new OutboxStore(db.knex).retryDead() })),
    keysList: () =>
      withDatabase(config, async (db) => {
        const now = new Date();
        const keys = await new SigningKeyStore(db.knex).list();
        print(keys.map(({ kid, alg, createdAt, activatesAt, retiresAt, removesAt }) => ({ kid, alg, state: keyState({ activatesAt, retiresAt, removesAt }, now), createdAt, activatesAt, retiresAt, removesAt })));
      }),
    keysRotate: () =>
      withDatabase(config, async (db, logger) => {
        try {
          const key = await keyParts(config, db, logger, systemClock).manager.rotate(new Date());
          print({ kid: key.kid, alg: key.alg, state: 'pending', activatesAt: key.activatesAt });
          return ExitCode.Ok;
        } catch (error) {
          if (!(error instanceof RotationPendingError)) throw error;
          process.stderr.write(`identity: ${error.message}\n`);
          return ExitCode.Failure;
        }
      }, { usesKeys: true }),
    config: () => Promise.resolve(print(describeConfig(config))),
    seed: (users, batchSize) =>
      withDatabase(config, async (db) => {
        const hasher = await BcryptHasher.start({ cost: config.BCRYPT_COST, workers: 1, queueMax: 1 });
        try {
          const parsed = PlainPassword.parse(SEED_PASSWORD);
          if (!parsed.ok) throw new Error(parsed.error);
          const hash = await hasher.hash(parsed.value);
          const started = Date.now();
          const result = await seedUsers(db.knex, users, hash.reveal(), batchSize);
          print({ ...result, password: SEED_PASSWORD, seconds: (Date.now() - started) / 1000 });
        } finally {
          await hasher.close();
        }
      }),
  };
}

/**
 * The `identity` command. The environment is read when a command runs, not before, so
 * `--help` works whatever it holds; an invalid one exits 2 naming every bad variable.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    process.stderr.write(`identity: Node.js ${MIN_NODE_MAJOR} or newer is required, this is ${process.versions.node} (run it through npm, which uses the node package)\n`);
    process.exit(ExitCode.Failure);
  }
  // A finished command exits at once: a NATS client still trying to connect would keep it alive.
  const program = buildProgram(() => cliHandlers(loadConfig()), (code) => process.exit(code));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`identity: ${error.message}\n`);
      process.exit(ExitCode.Usage);
    }
    const code = (error as { exitCode?: number }).exitCode;
    if (typeof code === 'number') process.exit(code);
    process.stderr.write(`identity: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(ExitCode.Failure);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
