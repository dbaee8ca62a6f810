import pLimit, { type LimitFunction } from 'p-limit';
import { setTimeout as sleep } from 'node:timers/promises';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import { isTransportFailure } from '../nats/publish-errors.js';
import { backoffMs } from './backoff.js';
import { LeaseHeartbeat } from './lease-heartbeat.js';
import { subjectFor } from './event-codec.js';
import type { ClaimOptions, ClaimedEvent, OutboxStore, RowFailure } from './outbox.store.js';
import type { FlushResult } from '../../application/ports/outbox-operations.port.js';

export interface OutboxRelayOptions {
  readonly relayId: string;
  readonly streamName: string;
  readonly subjectPrefix: string;
  readonly batchSize: number;
  readonly maxInFlight: number;
  readonly pollMs: number;
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly leaseSeconds: number;
  /** JetStream's duplicate window: no claim is renewed so long that a second publish could escape it. */
  readonly duplicateWindowSeconds: number;
  readonly retentionHours: number;
}

/** Where the relay gets its JetStream client: undefined while NATS is unreachable. */
interface JetStreamSource {
  readonly jetstream: JetStreamClient | undefined;
  whenReady(): Promise<JetStreamClient>;
}

export interface RelayDeps {
  readonly store: OutboxStore;
  readonly nats: JetStreamSource;
  readonly metrics: Pick<Metrics, 'outboxPublished' | 'outboxPublishErrors' | 'outboxDeadLetters' | 'outboxCommitToAckSeconds'>;
  readonly logger: Logger;
}

interface BatchResult {
  readonly claimed: number;
  readonly published: number;
  /** Set when every publish failed for a reason that is NATS's, not the rows'. */
  readonly transportError?: string;
}


/** An event this build cannot turn into a message: retrying will not help, so it counts toward dead-lettering. */
class UnpublishableEventError extends Error {}

const MAX_RELAY_BACKOFF_MS = 30_000;
const RETENTION_EVERY_MS = 60_000;
const RETENTION_BATCH = 1_000;
/** Batches published at once: one finishing while the next fills the freed slots. */
const PIPELINE_DEPTH = 2;

/**
 * Publishes committed outbox rows to JetStream: claim a batch, publish with a bounded
 * window, mark published after the PubAck. msgID = event_id, so a publish repeated after a
 * crash or a lost ack is dropped by JetStream's duplicate window: each event lands once.
 */
export class OutboxRelay {
  private running: Promise<void> | undefined;
  private stopping = false;
  private woken = false;
  private wakeUp: (() => void) | undefined;
  /** Rows this relay holds a lease on right now: renewed while they are published, given back on stop. */
  private readonly claims: LeaseHeartbeat;
  /** OUTBOX_MAX_IN_FLIGHT publishes at most, whichever batch they belong to. */
  private readonly window: LimitFunction;
  private lastRetention = 0;

  constructor(
    private readonly deps: RelayDeps,
    private readonly options: OutboxRelayOptions,
  ) {
    this.window = pLimit(options.maxInFlight);
    const { relayId, leaseSeconds, duplicateWindowSeconds } = options;
    this.claims = new LeaseHeartbeat(
      { renew: (ids) => deps.store.renew(relayId, ids, leaseSeconds), logger: deps.logger },
      // A claim renewed for at most this long, plus the lease it then runs out in, ends a
      // lease short of the window: another relay's copy is still deduplicated.
      { leaseSeconds, maxHoldMs: Math.max(0, duplicateWindowSeconds - 2 * leaseSeconds) * 1000 },
    );
  }

  start(): void {
    this.claims.start();
    this.running ??= this.loop();
  }

  /** Called after a local commit wrote events: publish now rather than at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Lets the batch in flight finish (up to `graceMs`), then gives back whatever is still claimed. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake();
    if (this.running !== undefined) await Promise.race([this.running, sleep(graceMs)]);
    await this.claims.stop();
    await this.deps.store.release(this.options.relayId, this.claims.ids).catch((error: unknown) =>
      this.deps.logger.warn({ err: error }, 'could not release outbox claims; their lease will expire'),
    );
  }

  /** `identity outbox flush`: publish everything publishable once, waiting up to `waitForNatsMs` for NATS. */
  async flush(waitForNatsMs: number): Promise<FlushResult> {
    const timeout = sleep(waitForNatsMs, undefined, { ref: false }).then(() => {
      throw new Error(`NATS did not become ready within ${waitForNatsMs / 1000} s`);
    });
    const js = await Promise.race([this.deps.nats.whenReady(), timeout]);
    // Each row is tried once: rows that failed are left out of later claims.
    const failed = new Set<string>();
    let published = 0;
    this.claims.start();
    try {
      for (;;) {
        const drained = await this.drain(js, { ignoreBackoff: true }, failed);
        if (drained.transportError !== undefined) throw new Error(`NATS did not accept events: ${drained.transportError}`);
        published += drained.published;
        if (drained.claimed === 0) return { published, failed: failed.size };
      }
    } finally {
      if (this.running === undefined) await this.claims.stop();
    }
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let delay = this.options.pollMs;
      try {
        const js = this.deps.nats.jetstream;
        if (js !== undefined) {
          const drained = await this.drain(js, {}, new Set());
          failures = drained.transportError === undefined ? 0 : failures + 1;
          if (drained.transportError !== undefined) {
            this.deps.logger.warn({ error: drained.transportError }, 'NATS refused the batch; retrying with backoff');
          }
        }
        await this.maybeApplyRetention();
      } catch (error) {
        failures++;
        this.deps.logger.error({ err: error }, 'outbox relay cycle failed; retrying with backoff');
      }
      if (failures > 0) delay = backoffMs(failures, this.options.pollMs, MAX_RELAY_BACKOFF_MS);
      await this.idle(delay);
    }
  }

  /** Sleeps until the delay passes or wake() is called; a wake during a batch skips the sleep. */
  private async idle(ms: number): Promise<void> {
    if (ms === 0 || this.stopping) return;
    if (this.woken) {
      this.woken = false;
      return;
    }
    const controller = new AbortController();
    this.wakeUp = () => controller.abort();
    // Once per cycle, not per event: says the relay now waits for a wake-up or its next poll.
    this.deps.logger.debug({ ms }, 'outbox relay idle');
    await sleep(ms, undefined, { signal: controller.signal }).catch(() => undefined);
    this.wakeUp = undefined;
    this.woken = false;
  }

  /**
   * Publishes batch after batch while they come full, with two batches in flight: the next
   * batch is claimed, and its publishes take the window's slots as the current batch's acks
   * free them, while finished batches' marks are written behind. Database round trips thus
   * overlap with publishing instead of adding to it. Order is safe: a batch's rows stay leased
   * until marked, and later rows of their aggregates wait for those marks. Rows that fail are
   * added to `failed` and left out of later claims.
   */
  private async drain(js: JetStreamClient, claim: Partial<ClaimOptions>, failed: Set<string>): Promise<BatchResult> {
    try {
      return await this.drainBatches(js, claim, failed);
    } catch (error) {
      // Batches cut short (the database went away) are never settled: stop renewing their
      // claims so that their leases run out and the rows are claimed again.
      this.claims.drop(this.claims.ids);
      throw error;
    }
  }

  private async drainBatches(js: JetStreamClient, claim: Partial<ClaimOptions>, failed: Set<string>): Promise<BatchResult> {
    const inFlight: Promise<Verdict>[] = [];
    const totals = { claimed: 0, published: 0 };
    let transportError: string | undefined;
    let settling = Promise.resolve();
    let settleError: Error | undefined;
    const settleOldest = async () => {
      const verdict = await inFlight.shift()!;
      // Marks are written in batch order; after a failed write the rest are left to their leases.
      settling = settling
        .then(() => (settleError === undefined ? this.settle(verdict) : this.claims.drop(verdict.rows.map((row) => row.id))))
        .catch((error: unknown) => {
          settleError ??= error instanceof Error ? error : new Error(String(error));
        });
      totals.claimed += verdict.rows.length;
      totals.published += verdict.publishedIds.length;
      verdict.rowFailures.forEach(({ row }) => failed.add(row.id));
      transportError ??= verdict.transportError;
    };
    let rows = await this.claim({ ...claim, excludeIds: [...failed] });
    while (rows.length > 0) {
      const full = rows.length === this.options.batchSize && !this.stopping;
      const next = full ? this.claim({ ...claim, excludeIds: [...failed] }) : Promise.resolve([]);
      // Observed now, awaited later: a claim that fails meanwhile (the database going away)
      // must not become an unhandled rejection.
      next.catch(() => undefined);
      const batch = rows;
      inFlight.push(this.publishAll(js, batch).then((outcomes) => judge(batch, outcomes)));
      if (inFlight.length === PIPELINE_DEPTH) await settleOldest();
      if (transportError !== undefined || settleError !== undefined) {
        await this.giveBack(next);
        break;
      }
      rows = await next;
    }
    while (inFlight.length > 0) await settleOldest();
    await settling;
    if (settleError !== undefined) throw settleError;
    return { ...totals, ...(transportError !== undefined && { transportError }) };
  }

  private async claim(claim: Partial<ClaimOptions>): Promise<ClaimedEvent[]> {
    const { relayId, batchSize, leaseSeconds } = this.options;
    const rows = await this.deps.store.claim({ relayId, limit: batchSize, leaseSeconds, ...claim });
    this.claims.hold(rows.map((row) => row.id));
    return rows;
  }

  /** Releases a claim made ahead that will not be published now. */
  private async giveBack(next: Promise<ClaimedEvent[]>): Promise<void> {
    const rows = await next.catch(() => []);
    const ids = rows.map((row) => row.id);
    this.claims.drop(ids);
    await this.deps.store.release(this.options.relayId, ids);
  }

  /** Publishes every row with at most OUTBOX_MAX_IN_FLIGHT in flight; each outcome is undefined (acked) or the error. */
  private publishAll(js: JetStreamClient, rows: readonly ClaimedEvent[]): Promise<unknown[]> {
    return Promise.all(rows.map((row) => this.window(() => this.publish(js, row)).then(() => undefined, (error: unknown) => error)));
  }

  /**
   * Writes a batch's outcome: published rows marked, NATS's failures released uncounted, the
   * rows' own failures counted. The batch's claims stop being renewed either way: should a
   * write fail, the rows are left to their leases.
   */
  private async settle(verdict: Verdict): Promise<void> {
    const { store, metrics } = this.deps;
    try {
      await store.markPublished(verdict.publishedIds);
      metrics.outboxPublished.inc(verdict.publishedIds.length);
      if (verdict.transport.length > 0) {
        metrics.outboxPublishErrors.inc({ kind: 'transport' }, verdict.transport.length);
        await store.release(this.options.relayId, verdict.transport.map(({ row }) => row.id), describe(verdict.transport[0]?.error));
      }
      if (verdict.rowFailures.length > 0) await store.markFailed(verdict.rowFailures.map(({ row, error }) => this.rowFailure(row, error)));
    } finally {
      this.claims.drop(verdict.rows.map((row) => row.id));
    }
  }

  private async publish(js: JetStreamClient, row: ClaimedEvent): Promise<void> {
    const subject = subjectFor(this.options.subjectPrefix, row.eventType);
    if (subject === undefined) throw new UnpublishableEventError(`no subject is known for event type ${row.eventType}`);
    const ack = await js.publish(subject, row.payload, {
      msgID: row.eventId,
      headers: toNatsHeaders(row.headers),
      expect: { streamName: this.options.streamName },
    });
    // A duplicate ack means an earlier attempt already landed: the event is in the stream.
    if (!ack.duplicate) this.deps.metrics.outboxCommitToAckSeconds.observe((Date.now() - row.createdAt.getTime()) / 1000);
  }

  private rowFailure(row: ClaimedEvent, error: unknown): RowFailure {
    const { maxAttempts, backoffBaseMs, backoffMaxMs } = this.options;
    const { metrics, logger } = this.deps;
    const attempts = row.attempts + 1;
    const dead = attempts >= maxAttempts;
    const message = describe(error);
    metrics.outboxPublishErrors.inc({ kind: 'event' });
    const context = { outboxId: row.id, eventId: row.eventId, eventType: row.eventType, attempts, error: message };
    if (dead) {
      metrics.outboxDeadLetters.inc();
      logger.error(context, 'outbox event dead-lettered after its last attempt');
    } else {
      logger.warn(context, 'outbox event publish failed; will retry');
    }
    return { id: row.id, error: message, dead, nextAttemptAt: new Date(Date.now() + backoffMs(attempts, backoffBaseMs, backoffMaxMs)) };
  }

  private async maybeApplyRetention(): Promise<void> {
    if (Date.now() - this.lastRetention < RETENTION_EVERY_MS) return;
    this.lastRetention = Date.now();
    const cutoff = new Date(Date.now() - this.options.retentionHours * 3_600_000);
    let deleted = 0;
    for (let batch = RETENTION_BATCH; batch === RETENTION_BATCH && !this.stopping; ) {
      batch = await this.deps.store.deletePublishedBefore(cutoff, RETENTION_BATCH);
      deleted += batch;
    }
    if (deleted > 0) this.deps.logger.info({ deleted }, 'outbox retention deleted published events');
  }
}

interface Failure {
  readonly row: ClaimedEvent;
  readonly error: unknown;
}

interface Verdict {
  readonly rows: readonly ClaimedEvent[];
  readonly publishedIds: readonly string[];
  /** Failures of the rows themselves: an attempt counts. */
  readonly rowFailures: readonly Failure[];
  /** NATS's failures say nothing about the rows, even when others of the batch got through: no attempt counts. */
  readonly transport: readonly Failure[];
  /** Set when nothing got through and NATS is to blame: the relay backs off as a whole. */
  readonly transportError?: string;
}

function judge(rows: readonly ClaimedEvent[], outcomes: readonly unknown[]): Verdict {
  const failures = rows.flatMap((row, i) => (outcomes[i] === undefined ? [] : [{ row, error: outcomes[i] }]));
  const transport = failures.filter(({ error }) => isTransportFailure(error));
  const rowFailures = failures.filter(({ error }) => !isTransportFailure(error));
  const publishedIds = rows.filter((_, i) => outcomes[i] === undefined).map((row) => row.id);
  const blameNats = publishedIds.length === 0 && rowFailures.length === 0 && transport.length > 0;
  return { rows, publishedIds, rowFailures, transport, ...(blameNats && { transportError: describe(transport[0]?.error) }) };
}

function toNatsHeaders(values: Record<string, string>): MsgHdrs {
  const result = headers();
  for (const [name, value] of Object.entries(values)) result.set(name, value);
  return result;
}

const describe = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
