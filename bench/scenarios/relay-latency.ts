import { runOnce } from '../lib/child.js';
import { nowMs, sleep } from '../lib/clock.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { readStoredTimes } from '../lib/nats.js';
import { limitRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { summarize } from '../lib/stats.js';
import type { OutboxWriterParams, OutboxWriterResult } from '../procs/outbox-writer.js';

const SETTINGS = {
  full: { ratePerSecond: 200, warmupMs: 2_000, durationMs: 15_000 },
  quick: { ratePerSecond: 200, warmupMs: 1_000, durationMs: 6_000 },
};
/**
 * The writer is another process, so the relay never gets the in-process wake-up that the
 * service's own RegisterUser commits give it and finds the rows by polling: the latency is
 * bound by OUTBOX_POLL_MS. Measured at the default and at a short poll.
 */
const POLL_SETTINGS = ['500', '50'];
const MAX_P99_MS = 250;
const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Commit-to-ack latency: a writer process commits events through the service's unit of work
 * at a steady rate while `identity serve` relays them; for each event, the time JetStream
 * stored it minus the time its transaction committed.
 */
export async function relayLatency(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const rows: ResultRow[] = [];
  for (const pollMs of POLL_SETTINGS) {
    const service = await startScenarioService(ctx, db, { OUTBOX_POLL_MS: pollMs });
    ctx.log(`writer: ${settings.ratePerSecond} events/s for ${(settings.warmupMs + settings.durationMs) / 1000} s`);
    const params: OutboxWriterParams = { databaseUrl: db.url, ratePerSecond: settings.ratePerSecond, durationMs: settings.warmupMs + settings.durationMs, eventSource: 'identity-service' };
    const written = await runOnce<OutboxWriterResult>(new URL('../procs/outbox-writer.ts', import.meta.url), 'run', params, ctx.scope);
    await waitForStream(ctx, service.stream, written.commits.length);
    const stored = await readStoredTimes(ctx.nats.nc, service.stream, 'ce-id', written.commits.length, DRAIN_TIMEOUT_MS);
    await service.stop();

    const measuredFrom = (written.commits[0]?.[1] ?? 0) + settings.warmupMs;
    const latencies: number[] = [];
    let missing = 0;
    for (const [eventId, committedAt] of written.commits) {
      const storedAt = stored.get(eventId);
      if (storedAt === undefined) missing++;
      else if (committedAt >= measuredFrom) latencies.push(storedAt - committedAt);
    }
    const latency = summarize(latencies);
    rows.push(
      limitRow({
        scenario: 'relay-latency',
        measure: `commit-to-ack p99 at ${settings.ratePerSecond} events/s, OUTBOX_POLL_MS=${pollMs}${pollMs === '500' ? ' (default)' : ''}`,
        service: { value: latency.p99, unit: 'ms' },
        limit: MAX_P99_MS,
        notes: `p50 ${latency.p50.toFixed(1)} ms, max ${latency.max.toFixed(0)} ms over ${latency.count} events; ${missing} missing from the stream; ${written.failed} writes failed${written.firstError === undefined ? '' : ` (${written.firstError})`}`,
      }),
    );
  }
  return rows;
}

async function waitForStream(ctx: BenchContext, stream: string, count: number): Promise<void> {
  const deadline = nowMs() + DRAIN_TIMEOUT_MS;
  while ((await ctx.nats.messages(stream).catch(() => 0)) < count && nowMs() < deadline) await sleep(100);
}
