import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../../infrastructure/config/load-config.js';
import { natsServers } from '../../infrastructure/config/nats-servers.js';
import { NatsConnector } from '../../infrastructure/nats/nats-connector.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { OutboxRelay } from '../../infrastructure/outbox/outbox-relay.js';
import type { OutboxStore } from '../../infrastructure/outbox/outbox.store.js';

export function natsConnector(config: Config, logger: Logger): NatsConnector {
  return new NatsConnector({
    servers: natsServers(config.NATS_URL),
    logger,
    stream: {
      name: config.NATS_STREAM,
      subjects: [`${config.NATS_SUBJECT_PREFIX}.>`],
      duplicateWindowSeconds: config.NATS_DUPLICATE_WINDOW_SECONDS,
      replicas: config.NATS_STREAM_REPLICAS,
      maxAgeSeconds: config.NATS_STREAM_MAX_AGE_SECONDS,
    },
  });
}

export function outboxRelay(config: Config, store: OutboxStore, nats: NatsConnector, metrics: Metrics, logger: Logger): OutboxRelay {
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
      duplicateWindowSeconds: config.NATS_DUPLICATE_WINDOW_SECONDS,
      retentionHours: config.OUTBOX_RETENTION_HOURS,
    },
  );
}
