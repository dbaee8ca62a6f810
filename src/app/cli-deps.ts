import { describeConfig, type Config } from '../infrastructure/config/load-config.js';
import { natsServers } from '../infrastructure/config/nats-servers.js';
import { knexSchemaMigrations } from '../infrastructure/db/knex-schema-migrations.js';
import { NatsEventTail } from '../infrastructure/nats/nats-event-tail.js';
import { createMetrics } from '../infrastructure/observability/metrics.js';
import { OutboxAdministration } from '../infrastructure/outbox/outbox-operations.js';
import { OutboxStore } from '../infrastructure/outbox/outbox.store.js';
import { SigningKeyAdministration } from '../infrastructure/tokens/signing-key-operations.js';
import { SigningKeyStore } from '../infrastructure/tokens/signing-key.store.js';
import type { CliDeps } from '../transport/cli/cli-deps.js';
import { serve } from './serve.js';
import { withDatabase } from './with-database.js';
import { keyManager } from './wiring/keys.js';
import { natsConnector, outboxRelay } from './wiring/outbox.js';

/** How long `outbox flush` waits for NATS before it gives up. */
const FLUSH_NATS_WAIT_MS = 30_000;

/** The commands' dependencies, each opened for one command and closed after it. */
export function cliDeps(config: Config): CliDeps {
  return {
    serve: () => serve(config),
    migrations: (work) => withDatabase(config, (db) => work(knexSchemaMigrations(db.knex)), { migrating: true }),
    outbox: (work) =>
      withDatabase(config, (db, logger) => {
        const store = new OutboxStore(db.knex);
        const openRelay = () => {
          const nats = natsConnector(config, logger);
          const relay = outboxRelay(config, store, nats, createMetrics(), logger);
          return { flush: () => relay.flush(FLUSH_NATS_WAIT_MS), close: () => nats.close() };
        };
        return work(new OutboxAdministration(store, openRelay));
      }),
    keys: (work) =>
      withDatabase(
        config,
        (db) => {
          const store = new SigningKeyStore(db.knex);
          return work(new SigningKeyAdministration(store, () => keyManager(config, store)));
        },
        { usesKeys: true },
      ),
    events: async (work) => {
      await using tail = await NatsEventTail.open(natsServers(config.NATS_URL), config.NATS_STREAM, config.NATS_SUBJECT_PREFIX);
      // Awaited here, so the connection stays open until the work is done.
      return await work(tail);
    },
    describeConfig: () => describeConfig(config),
  };
}
