import { runOnce } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { jobNotes } from '../lib/notes.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { seedDatabase, type SeededUsers } from '../lib/seed.js';
import type { Job } from '../lib/loadgen.js';
import { startScenarioService } from '../lib/service.js';
import type { RawCompareParams } from '../procs/raw-compare.js';

const SETTINGS = {
  full: { users: 10_000, warmupMs: 3_000, durationMs: 12_000, allCoresMs: 6_000 },
  quick: { users: 2_000, warmupMs: 1_500, durationMs: 5_000, allCoresMs: 3_000 },
};

export const RAW_COMPARE = new URL('../procs/raw-compare.ts', import.meta.url);

/** The raw bcrypt compare rate on `threads` threads, in its own process. */
async function rawCompareRate(ctx: BenchContext, threads: number, warmupMs: number, durationMs: number): Promise<number> {
  ctx.log(`baseline: bcrypt compare on ${threads} thread(s), ${durationMs / 1000} s`);
  const params: RawCompareParams = { cost: ctx.bcryptCost, threads, warmupMs, durationMs };
  return (await runOnce<{ rate: number }>(RAW_COMPARE, 'run', params, ctx.scope)).rate;
}

/**
 * Authenticate at saturation, as random users of a seeded table, vs raw bcrypt compare on
 * as many threads as the service hashes with (HASH_WORKERS): a login is one compare plus a
 * lookup, a throttle reset and a token; the ratio shows what those cost. The rate on every
 * core is shown too (the same as HASH_WORKERS by default).
 */
/** Logins as random seeded users with `concurrency` always in flight: the rate the service sustains. */
export const authenticateAtSaturation = (target: string, users: SeededUsers, concurrency: number): Job => ({
  label: 'Authenticate',
  target,
  request: { rpc: 'Authenticate', users: { emailPrefix: users.emailPrefix, count: users.count, order: 'random' }, password: users.password },
  load: { kind: 'closed', concurrency },
});

export async function authenticate(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const service = await startScenarioService(ctx, db);
  const concurrency = ctx.hashWorkers + 2;
  ctx.log(`service: Authenticate, ${concurrency} in flight, ${settings.durationMs / 1000} s`);
  const { result, cpuShare } = await withCpuShare(service.pid, () =>
    ctx.loadgen.run({
      jobs: [
        authenticateAtSaturation(service.target, users, concurrency),
      ],
      warmupMs: settings.warmupMs,
      durationMs: settings.durationMs,
    }),
  );
  await service.stop();
  const job = result.jobs[0]!;
  const raw = await rawCompareRate(ctx, ctx.hashWorkers, settings.warmupMs, settings.durationMs);
  const allCores = await rawCompareRate(ctx, ctx.cores, 1_000, settings.allCoresMs);
  const serviceRate = { value: job.throughput, unit: '/s' } as const;
  return [
    ratioRow({
      scenario: 'authenticate',
      measure: 'Authenticate throughput',
      service: serviceRate,
      baseline: { value: raw, unit: '/s', label: `compare ×${ctx.hashWorkers} thread` },
      minRatio: 0.9,
      notes: jobNotes(job, { client: result.clientCpuShare, service: cpuShare }),
    }),
    {
      scenario: 'authenticate',
      measure: 'Authenticate vs compare on every core',
      service: serviceRate,
      baseline: { value: allCores, unit: '/s', label: `compare ×${ctx.cores} threads` },
      ratio: job.throughput / allCores,
      target: 'information',
      notes: `HASH_WORKERS=${ctx.hashWorkers} (the default, one per core, at nice 10)`,
    },
  ];
}
