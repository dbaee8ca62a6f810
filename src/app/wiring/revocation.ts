import type { Logger } from 'pino';
import type { Clock } from '../../application/ports/clock.port.js';
import type { Config } from '../../infrastructure/config/load-config.js';
import type { Database } from '../../infrastructure/db/database.js';
import { SessionStore } from '../../infrastructure/db/session.store.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { InMemoryRevocationList } from '../../infrastructure/revocation/in-memory-revocation-list.js';
import { RevocationFeed } from '../../infrastructure/revocation/revocation-feed.js';

const SESSION_CLEANUP_MS = 5 * 60_000;
/** Sessions deleted per statement: short locks, as for the outbox's retention. */
const SESSION_CLEANUP_BATCH = 500;

/**
 * The revocations VerifyToken refuses, in memory, and the feed that keeps them current
 * (LISTEN/NOTIFY, resyncs). Not started: the caller awaits `feed.start()` before serving.
 */
export function revocation(config: Config, db: Database, clock: Clock, metrics: Metrics, logger: Logger) {
  // The longest an access token lives: what a revocation entry must outlast.
  const horizonSeconds = config.TOKEN_TTL_SECONDS + config.TOKEN_CLOCK_SKEW_SECONDS;
  const list = new InMemoryRevocationList({ clock, horizonSeconds, metrics, logger });
  const feed = new RevocationFeed({
    knex: db.knex,
    list,
    connectionString: config.DATABASE_URL,
    resyncSeconds: config.REVOCATION_RESYNC_SECONDS,
    metrics,
    logger: logger.child({ component: 'revocation' }),
  });
  metrics.setRevocationSource(() => list.size);
  return { list, feed, horizonSeconds };
}

/**
 * Deletes ended sessions in small batches every few minutes; returns the stop function. A
 * revoked session is kept until the access tokens it issued have expired (the horizon), so
 * that a replica starting meanwhile still learns of its revocation.
 */
export function sessionCleanup(db: Database, clock: Clock, horizonSeconds: number, logger: Logger): () => void {
  const store = new SessionStore(db.knex);
  const run = async () => {
    const cutoff = new Date(clock.now().getTime() - horizonSeconds * 1000);
    while ((await store.deleteEndedBefore(cutoff, SESSION_CLEANUP_BATCH)) === SESSION_CLEANUP_BATCH);
  };
  const timer = setInterval(() => void run().catch((error: unknown) => logger.warn({ err: error }, 'session cleanup failed')), SESSION_CLEANUP_MS).unref();
  return () => clearInterval(timer);
}
