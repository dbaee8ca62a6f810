import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutboxStats } from '../../application/ports/outbox-operations.port.js';
import { PlainHistogram } from './plain-histogram.js';

/**
 * Every metric the service exports, registered on one registry. The gRPC series are named
 * and labelled as go-grpc-prometheus does, so existing dashboards work unchanged.
 */

export interface OutboxGaugeSource {
  stats(): Promise<OutboxStats>;
}

const STATS_REUSE_MS = 1_000;
const STATS_TIMEOUT_MS = 2_000;

export interface PoolGaugeSource {
  inUse(): number;
  waiting(): number;
}

/** The signing key in use, read when scraped. */
interface SigningKeyGaugeSource {
  /** Seconds since the key that signs now started signing; undefined while none does. */
  activeAgeSeconds(): number | undefined;
  /** KEY_ROTATION_DAYS in seconds; 0 when keys rotate only by `identity keys rotate`. */
  readonly rotationPeriodSeconds: number;
}

export function createMetrics() {
  const registry = new Registry();
  // The outbox gauges read the table when scraped; the source is set once the database is open.
  let outboxSource: OutboxGaugeSource | undefined;
  let outboxStats: { at: number; stats: Promise<OutboxStats | undefined> } | undefined;
  // One query for the three outbox gauges per scrape. A database that is down or slow leaves them
  // as they were instead of failing (or holding up) the whole scrape.
  const readOutboxStats = (): Promise<OutboxStats | undefined> => {
    if (outboxSource === undefined) return Promise.resolve(undefined);
    if (outboxStats === undefined || Date.now() - outboxStats.at > STATS_REUSE_MS) {
      const timeout = sleep(STATS_TIMEOUT_MS, undefined, { ref: false });
      outboxStats = { at: Date.now(), stats: Promise.race([outboxSource.stats(), timeout]).catch(() => undefined) };
    }
    return outboxStats.stats;
  };
  let poolSource: PoolGaugeSource | undefined;
  let revocationSource: (() => { sessions: number; users: number }) | undefined;
  let signingKeySource: SigningKeyGaugeSource | undefined;
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // Counts kept in plain numbers between scrapes (see rpc-metrics.ts), added to their series when scraped.
  const beforeScrape = new Set<() => void>();
  const flushCounts = () => beforeScrape.forEach((flush) => flush());
  /** A gauge read from the one outbox stats query when scraped. */
  const outboxGauge = (name: string, help: string, value: (stats: OutboxStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const stats = await readOutboxStats();
        if (stats !== undefined) this.set(value(stats));
      },
    });
  const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
  return {
    registry,
    /** Runs `flush` whenever the counters of the hot path (gRPC calls, ext_authz checks) are read, before they are. */
    onScrape: (flush: () => void) => void beforeScrape.add(flush),
    setOutboxSource(source: OutboxGaugeSource): void {
      outboxSource = source;
    },
    setPoolSource(source: PoolGaugeSource): void {
      poolSource = source;
    },
    setRevocationSource(source: () => { sessions: number; users: number }): void {
      revocationSource = source;
    },
    setSigningKeySource(source: SigningKeyGaugeSource): void {
      signingKeySource = source;
    },
    dbPoolInUse: new Gauge({
      name: 'db_pool_connections_in_use',
      help: 'Database connections checked out of the pool.',
      registers,
      collect() {
        if (poolSource !== undefined) this.set(poolSource.inUse());
      },
    }),
    dbPoolWaiting: new Gauge({
      name: 'db_pool_acquires_waiting',
      help: 'Queries waiting for a database connection.',
      registers,
      collect() {
        if (poolSource !== undefined) this.set(poolSource.waiting());
      },
    }),
    outboxPending: outboxGauge('outbox_pending', 'Outbox events waiting for publication (dead letters excluded).', (stats) => stats.pending),
    outboxDead: outboxGauge(
      'outbox_dead',
      "Outbox events dead-lettered and waiting for `identity outbox retry-dead`, in the whole table (every replica's).",
      (stats) => stats.dead,
    ),
    outboxOldestPendingAge: outboxGauge(
      'outbox_oldest_pending_age_seconds',
      'Age of the oldest outbox event waiting for publication.',
      (stats) => stats.oldestPendingAgeSeconds,
    ),
    apiRefused: new Counter({
      name: 'api_refused_total',
      help: 'Connections (MAX_CONNECTIONS) and streams (MAX_OPEN_STREAMS) the API port refused at its limits',
      labelNames: ['kind'] as const,
      registers,
    }),
    grpcStarted: new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: grpcLabels,
      registers,
      collect: flushCounts,
    }),
    grpcHandled: new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...grpcLabels, 'grpc_code'],
      registers,
      collect: flushCounts,
    }),
    grpcHandlingSeconds: new PlainHistogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames: grpcLabels,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    hashQueueDepth: new Gauge({
      name: 'bcrypt_queue_depth',
      help: 'Password hashing jobs waiting for a worker.',
      registers,
    }),
    hashSeconds: new Histogram({
      name: 'bcrypt_duration_seconds',
      help: 'Time to hash or compare a password, queueing included.',
      labelNames: ['operation'],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
      registers,
    }),
    hashRejected: new Counter({
      name: 'bcrypt_rejected_total',
      help: 'Hashing jobs refused because the queue was full (RESOURCE_EXHAUSTED).',
      registers,
    }),
    tokenVerifyFailures: new Counter({
      name: 'token_verify_failures_total',
      help: 'Tokens refused by VerifyToken and ext_authz Check, by reason (Check adds "missing": no Bearer token).',
      labelNames: ['reason'],
      registers,
    }),
    extAuthzChecks: new Counter({
      name: 'ext_authz_checks_total',
      help: 'Envoy ext_authz Check answers: allowed, denied (401) or unavailable (503).',
      labelNames: ['result'],
      registers,
      collect: flushCounts,
    }),
    loginThrottled: new Counter({
      name: 'login_throttled_total',
      help: 'Authenticate calls refused by the failed-login throttle.',
      registers,
    }),
    outboxPublished: new Counter({
      name: 'outbox_published_total',
      help: 'Outbox events acknowledged by JetStream.',
      registers,
    }),
    outboxPublishErrors: new Counter({
      name: 'outbox_publish_errors_total',
      help: 'Failed attempts to publish an outbox event.',
      labelNames: ['kind'],
      registers,
    }),
    outboxDeadLetters: new Counter({
      name: 'outbox_dead_letters_total',
      help: 'Outbox events dead-lettered after the maximum number of attempts.',
      registers,
    }),
    refreshTokens: new Counter({
      name: 'refresh_tokens_total',
      help: 'RefreshToken calls by outcome (rotated, grace, reused, expired, revoked, unknown, user_inactive).',
      labelNames: ['outcome'],
      registers,
    }),
    refreshTokenReuseDetected: new Counter({
      name: 'refresh_token_reuse_detected_total',
      help: 'Consumed refresh tokens presented again; each revoked its session.',
      registers,
    }),
    revocationPropagationSeconds: new Histogram({
      name: 'revocation_propagation_seconds',
      help: 'Time from a revocation in the database (its trigger, at commit) to its application in this replica\'s memory.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    revocationResyncs: new Counter({
      name: 'revocation_resyncs_total',
      help: 'Full reloads of the revocation list from the database (start, reconnect, REVOCATION_RESYNC_SECONDS).',
      registers,
    }),
    revocationEntries: new Gauge({
      name: 'revocation_entries',
      help: 'Revocations held in memory for VerifyToken, by kind (session, user).',
      labelNames: ['kind'],
      registers,
      collect() {
        if (revocationSource === undefined) return;
        const size = revocationSource();
        this.set({ kind: 'session' }, size.sessions);
        this.set({ kind: 'user' }, size.users);
      },
    }),
    // For the "rotation overdue" alert: the age of the signing key against the rotation period.
    signingKeyActiveAge: new Gauge({
      name: 'signing_key_active_age_seconds',
      help: 'Time since the signing key in use started signing.',
      registers,
      collect() {
        const age = signingKeySource?.activeAgeSeconds();
        if (age !== undefined) this.set(age);
      },
    }),
    signingKeyRotationPeriod: new Gauge({
      name: 'signing_key_rotation_period_seconds',
      help: 'KEY_ROTATION_DAYS in seconds; 0 when keys rotate only by `identity keys rotate`.',
      registers,
      collect() {
        if (signingKeySource !== undefined) this.set(signingKeySource.rotationPeriodSeconds);
      },
    }),
    outboxCommitToAckSeconds: new Histogram({
      name: 'outbox_commit_to_ack_seconds',
      help: 'Time from the outbox insert to the JetStream PubAck.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
