import { pick, type BenchContext } from '../lib/context.js';
import { runOnce } from '../lib/child.js';
import { createDatabase } from '../lib/database.js';
import { jobNotes } from '../lib/notes.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import type { RawRegisterParams } from '../procs/raw-register.js';

const SETTINGS = { full: { warmupMs: 3_000, durationMs: 18_000 }, quick: { warmupMs: 1_500, durationMs: 5_000 } };
export const REGISTER_PASSWORD = 'bench-Register-pass-2026';

/**
 * RegisterUser at saturation (a few more calls in flight than hashing threads, below the
 * hashing queue limit) vs the bare work it must do: bcrypt hash on the same number of
 * threads + the same users/outbox transaction with bare pg. The gap is everything else the
 * service does (validation, the existence check, Knex, the RPC, the relay publishing).
 */
export async function register(ctx: BenchContext): Promise<ResultRow[]> {
  const { warmupMs, durationMs } = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db);
  const concurrency = ctx.hashWorkers + 2;
  ctx.log(`service: RegisterUser, ${concurrency} in flight, ${durationMs / 1000} s`);
  const { result, cpuShare } = await withCpuShare(service.pid, () =>
    ctx.loadgen.run({
      jobs: [{ label: 'RegisterUser', target: service.target, request: { rpc: 'RegisterUser', emailPrefix: 'register-', password: REGISTER_PASSWORD }, load: { kind: 'closed', concurrency } }],
      warmupMs,
      durationMs,
    }),
  );
  await service.stop();
  const job = result.jobs[0]!;

  ctx.log(`baseline: bcrypt hash on ${ctx.hashWorkers} thread(s) + users/outbox transaction, ${durationMs / 1000} s`);
  const params: RawRegisterParams = { databaseUrl: db.url, cost: ctx.bcryptCost, threads: ctx.hashWorkers, warmupMs, durationMs, eventSource: 'identity-service' };
  const raw = await runOnce<{ rate: number }>(new URL('../procs/raw-register.ts', import.meta.url), 'run', params, ctx.scope);
  return [
    ratioRow({
      scenario: 'register',
      measure: 'RegisterUser throughput',
      service: { value: job.throughput, unit: '/s' },
      baseline: { value: raw.rate, unit: '/s', label: `hash ×${ctx.hashWorkers} thread + tx` },
      minRatio: 0.9,
      notes: jobNotes(job, { client: result.clientCpuShare, service: cpuShare }),
    }),
  ];
}
