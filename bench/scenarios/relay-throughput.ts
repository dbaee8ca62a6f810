import { randomBytes } from 'node:crypto';
import { OutboxStore } from '../../src/infrastructure/outbox/outbox.store.js';
import { runOnce } from '../lib/child.js';
import { nowMs, sleep } from '../lib/clock.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase, tableBytes } from '../lib/database.js';
import { insertBacklog, makeEvents } from '../lib/events.js';
import { storedAtMs } from '../lib/nats.js';
import { ratioRow, toMB, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import type { RawPublishParams } from '../procs/raw-publish.js';

const SETTINGS = {
  // One 100,000-event drain gives both figures: issue 8's full backlog and issue 4's 20,000 (its first 20,000).
  full: { backlog: 100_000, checkpoint: 20_000 },
  quick: { backlog: 20_000, checkpoint: 20_000 },
};
/** The service's defaults, which the baseline mirrors. */
const IN_FLIGHT = 64;
const DUPLICATE_WINDOW_SECONDS = 1_200;
const EVENT_SOURCE = 'identity-service';
const SUBJECT_SUFFIX = 'user.registered';
const RETENTION_BATCH = 1_000;
const POLL_MS = 200;
const REPORT_EVERY_MS = 5_000;
const MIN_DRAIN_RATE = 100;

/**
 * The relay (inside `identity serve`) draining a backlog written straight into the outbox,
 * vs a bare script publishing the same events from memory with the same publishes in flight.
 * Rates come from JetStream's own storage timestamps (first message to N-th), measured the
 * same way for both. Then the outbox's size before and after retention deletes the rows.
 */
export async function relayThroughput(ctx: BenchContext): Promise<ResultRow[]> {
  const { backlog, checkpoint } = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  ctx.log(`writing a backlog of ${backlog.toLocaleString('en-US')} events into the outbox`);
  await insertBacklog(db.knex, makeEvents(backlog, EVENT_SOURCE));
  await db.knex.raw('vacuum analyze outbox');
  const withBacklog = await tableBytes(db.knex, 'outbox');

  const service = await startScenarioService(ctx, db);
  await waitForMessages(ctx, service.stream, backlog, 'relay');
  const drainedAt = nowMs();
  await waitUntil(async () => (await new OutboxStore(db.knex).stats()).pending === 0, 60_000);
  const markLagMs = nowMs() - drainedAt;
  const relay = await rates(ctx, service.stream, checkpoint, backlog);
  await service.stop();

  const afterDrain = await tableBytes(db.knex, 'outbox');
  const retention = await applyRetention(db.knex);
  const afterRetention = await tableBytes(db.knex, 'outbox');
  await db.knex.raw('vacuum outbox');
  const afterVacuum = await tableBytes(db.knex, 'outbox');

  const tag = randomBytes(4).toString('hex');
  const stream = `BENCH_RAW_${tag}`;
  const prefix = `bench_raw_${tag}`;
  ctx.nats.deleteWithScope(stream, ctx.scope);
  await ctx.nats.provision(stream, prefix, DUPLICATE_WINDOW_SECONDS);
  ctx.log(`baseline: publishing ${backlog.toLocaleString('en-US')} events with ${IN_FLIGHT} in flight`);
  const params: RawPublishParams = { natsUrl: ctx.natsUrl, stream, subject: `${prefix}.${SUBJECT_SUFFIX}`, count: backlog, inFlight: IN_FLIGHT, eventSource: EVENT_SOURCE };
  await runOnce(new URL('../procs/raw-publish.ts', import.meta.url), 'run', params, ctx.scope);
  const bare = await rates(ctx, stream, checkpoint, backlog);

  const rateRow = (count: number, relayRate: number, bareRate: number, measure: string) =>
    ratioRow({
      scenario: 'relay-throughput',
      measure,
      service: { value: relayRate, unit: '/s' },
      baseline: { value: bareRate, unit: '/s', label: `bare publish, ${IN_FLIGHT} in flight` },
      minRatio: 0.5,
      notes: `JetStream storage time of message 1 to message ${count.toLocaleString('en-US')}; all rows marked published ${(markLagMs / 1000).toFixed(1)} s after the last ack`,
    });
  const size = (measure: string, bytes: number, notes?: string): ResultRow => ({
    scenario: 'relay-throughput',
    measure,
    service: { value: toMB(bytes), unit: 'MB' },
    target: 'information',
    ...(notes !== undefined && { notes }),
  });
  return [
    ...(checkpoint < backlog ? [rateRow(checkpoint, relay.atCheckpoint, bare.atCheckpoint, `relay drain, first ${checkpoint.toLocaleString('en-US')} of the backlog`)] : []),
    rateRow(backlog, relay.atEnd, bare.atEnd, `relay drain of ${backlog.toLocaleString('en-US')} events`),
    size('outbox size with the backlog pending', withBacklog, 'pg_total_relation_size, table + indexes'),
    size('outbox size after the drain', afterDrain, 'published_at set on every row (dead tuples until vacuum)'),
    size('outbox size after retention', afterRetention, `${retention.deleted.toLocaleString('en-US')} rows deleted in ${retention.seconds.toFixed(1)} s by the relay's retention delete (batches of ${RETENTION_BATCH}); space is reused, not returned`),
    size('outbox size after VACUUM', afterVacuum, 'plain VACUUM (what autovacuum does): empty pages at the end are returned'),
  ];
}

async function waitForMessages(ctx: BenchContext, stream: string, count: number, label: string): Promise<void> {
  const deadline = nowMs() + Math.max(120_000, (count / MIN_DRAIN_RATE) * 1000);
  let nextReport = nowMs() + REPORT_EVERY_MS;
  for (;;) {
    const stored = await ctx.nats.messages(stream).catch(() => 0);
    if (stored >= count) return;
    if (nowMs() > deadline) throw new Error(`${label}: only ${stored} of ${count} events reached the stream in time`);
    if (nowMs() >= nextReport) {
      nextReport += REPORT_EVERY_MS;
      ctx.log(`${label}: ${stored.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} events in the stream`);
    }
    await sleep(POLL_MS);
  }
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  while (!(await condition())) {
    if (nowMs() > deadline) throw new Error('timed out');
    await sleep(POLL_MS);
  }
}

/** Events per second from the storage time of message 1 to message `checkpoint` and `end`. */
async function rates(ctx: BenchContext, stream: string, checkpoint: number, end: number): Promise<{ atCheckpoint: number; atEnd: number }> {
  const first = await storedAtMs(ctx.nats.jsm, stream, 1);
  const rate = async (seq: number) => (seq - 1) / ((await storedAtMs(ctx.nats.jsm, stream, seq)) - first) * 1000;
  return { atCheckpoint: await rate(checkpoint), atEnd: await rate(end) };
}

/** The relay's retention delete (OutboxStore.deletePublishedBefore), as if every row were older than OUTBOX_RETENTION_HOURS. */
async function applyRetention(knex: Parameters<typeof tableBytes>[0]): Promise<{ deleted: number; seconds: number }> {
  const store = new OutboxStore(knex);
  const started = nowMs();
  const cutoff = new Date(Date.now() + 60_000);
  let deleted = 0;
  for (let batch = RETENTION_BATCH; batch === RETENTION_BATCH; deleted += batch) batch = await store.deletePublishedBefore(cutoff, RETENTION_BATCH);
  return { deleted, seconds: (nowMs() - started) / 1000 };
}
