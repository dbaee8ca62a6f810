import { nowMs, sleep } from '../lib/clock.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { heapFigures, type HeapFigures } from '../lib/heap.js';
import { errorText } from '../lib/notes.js';
import { rssBytes } from '../lib/procfs.js';
import { limitRow, toMB, type ResultRow } from '../lib/report.js';
import { seedDatabase } from '../lib/seed.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import { REGISTER_PASSWORD } from './register.js';

const SETTINGS = {
  full: { users: 10_000, tokens: 20_000, warmupMs: 20_000, loadMs: 300_000 },
  quick: { users: 2_000, tokens: 20_000, warmupMs: 5_000, loadMs: 30_000 },
};
/**
 * VerifyToken calls in flight. A closed load, not a fixed rate: on a machine that cannot keep
 * up, a fixed rate piles up calls in flight and the RSS measures that queue, not a leak. A few
 * thousand calls a second, cycling through more distinct tokens than the verification cache
 * holds (10,000), fill the cache within a full run's warm-up and then keep it churning.
 */
const VERIFY_STREAMS = 8;
const SAMPLE_EVERY_MS = 1_000;
const REPORT_EVERY_MS = 30_000;
const MAX_GROWTH = 0.1;
const MAX_RSS_MB = 200;

/**
 * RSS of the service process at start, after a warm-up of mixed load (caches and pools at
 * their working size) and after minutes more of the same: a leak shows as growth after the
 * warm-up. The mix: VerifyToken with distinct tokens, Authenticate and
 * RegisterUser keeping bcrypt busy, and the relay publishing the new users' events.
 */
export async function memory(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const service = await startScenarioService(ctx, db, {}, { compiled: true });
  const tokens = await mintTokens(service, db, settings.tokens);
  await sleep(1_000);
  const atStart = rssBytes(service.pid);
  ctx.log(`RSS at start ${toMB(atStart).toFixed(1)} MB; mixed load for ${settings.warmupMs / 1000} s warm-up + ${settings.loadMs / 1000} s`);

  const samples: { at: number; rss: number }[] = [];
  const loadStarted = nowMs();
  let nextReport = REPORT_EVERY_MS;
  let heapAfterWarmup: Promise<HeapFigures | undefined> | undefined;
  const sampler = setInterval(() => {
    const sample = { at: nowMs() - loadStarted, rss: rssBytes(service.pid) };
    samples.push(sample);
    // Awaited only after the load: a failed scrape must not surface as an unhandled rejection.
    if (sample.at >= settings.warmupMs) heapAfterWarmup ??= heapFigures(service).catch(() => undefined);
    if (sample.at >= nextReport) {
      nextReport += REPORT_EVERY_MS;
      ctx.log(`${Math.round(sample.at / 1000)} s of load, RSS ${toMB(sample.rss).toFixed(1)} MB`);
    }
  }, SAMPLE_EVERY_MS);
  let result;
  try {
    result = await ctx.loadgen.run({
      jobs: [
        { label: 'VerifyToken', target: service.target, request: { rpc: 'VerifyToken', tokens }, load: { kind: 'closed', concurrency: VERIFY_STREAMS } },
        {
          label: 'Authenticate',
          target: service.target,
          request: { rpc: 'Authenticate', users: { emailPrefix: users.emailPrefix, count: users.count, order: 'random' }, password: users.password },
          load: { kind: 'closed', concurrency: ctx.hashWorkers + 1 },
        },
        { label: 'RegisterUser', target: service.target, request: { rpc: 'RegisterUser', emailPrefix: 'memory-', password: REGISTER_PASSWORD }, load: { kind: 'closed', concurrency: 1 } },
      ],
      warmupMs: settings.warmupMs,
      durationMs: settings.loadMs,
    });
  } finally {
    clearInterval(sampler);
  }
  const atEnd = rssBytes(service.pid);
  const heap = { warm: await heapAfterWarmup, end: await heapFigures(service).catch(() => undefined) };
  await service.stop();

  const afterWarmup = samples.find((sample) => sample.at >= settings.warmupMs)?.rss ?? Number.NaN;
  const peak = Math.max(atEnd, ...samples.map((sample) => sample.rss));
  const growth = atEnd / afterWarmup - 1;
  const calls = result.jobs.map((job) => `${job.label} ${job.ok} (${errorText(job)})`).join(', ');
  const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : toMB(bytes).toFixed(0));
  const heapText = `V8 heap used ${mb(heap.warm?.used)} → ${mb(heap.end?.used)} MB, heap reserved ${mb(heap.warm?.total)} → ${mb(heap.end?.total)} MB (after warm-up → end)`;
  return [
    {
      scenario: 'memory',
      measure: `RSS growth over ${settings.loadMs / 1000} s of mixed load after warm-up`,
      service: { value: toMB(atEnd), unit: 'MB', label: 'end' },
      baseline: { value: toMB(afterWarmup), unit: 'MB', label: 'after warm-up' },
      ratio: atEnd / afterWarmup,
      target: `grows < ${MAX_GROWTH * 100} %`,
      pass: growth < MAX_GROWTH,
      notes: `${heapText}; RSS at start ${toMB(atStart).toFixed(1)} MB; service compiled with tsc and run with node (the tsx loader would add ~90 MB); calls: ${calls}`,
    },
    limitRow({
      scenario: 'memory',
      measure: 'peak RSS under mixed load',
      service: { value: toMB(peak), unit: 'MB' },
      limit: MAX_RSS_MB,
      notes: `sampled every ${SAMPLE_EVERY_MS / 1000} s from /proc/${service.pid}/status`,
    }),
  ];
}
