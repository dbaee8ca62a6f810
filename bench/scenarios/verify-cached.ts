import { startChild } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import type { RunSpec } from '../lib/loadgen.js';
import { jobNotes } from '../lib/notes.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import { VERIFY_STREAMS } from './verify-uncached.js';

const SETTINGS = { full: { warmupMs: 2_000, durationMs: 10_000 }, quick: { warmupMs: 1_000, durationMs: 4_000 } };

/**
 * VerifyToken with the cache on and one token sent again and again, vs a bare Connect h2c
 * server (same adapter, same HTTP/2 settings) whose VerifyToken returns a constant, under
 * the same load from the same client: what the service adds on a cache hit.
 */
export async function verifyCached(ctx: BenchContext): Promise<ResultRow[]> {
  const { warmupMs, durationMs } = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db);
  const [token] = await mintTokens(service, db, 1);
  const load = (target: string): RunSpec => ({
    jobs: [{ label: 'VerifyToken', target, request: { rpc: 'VerifyToken', tokens: [token!] }, load: { kind: 'closed', concurrency: VERIFY_STREAMS } }],
    warmupMs,
    durationMs,
  });
  ctx.log(`service: VerifyToken (cached), ${VERIFY_STREAMS} streams, ${durationMs / 1000} s`);
  const measured = await withCpuShare(service.pid, () => ctx.loadgen.run(load(service.target)));
  await service.stop();

  const bare = await startChild(new URL('../procs/bare-server.ts', import.meta.url), ctx.scope);
  const port = await bare.call<number>('listen');
  ctx.log(`baseline: bare Connect server returning a constant, ${durationMs / 1000} s`);
  const baseline = await withCpuShare(bare.pid, () => ctx.loadgen.run(load(`127.0.0.1:${port}`)));
  await bare.close();
  const job = measured.result.jobs[0]!;
  const bareJob = baseline.result.jobs[0]!;
  return [
    ratioRow({
      scenario: 'verify-cached',
      measure: 'VerifyToken throughput, cache hit',
      service: { value: job.throughput, unit: '/s' },
      baseline: { value: bareJob.throughput, unit: '/s', label: 'bare Connect handler' },
      minRatio: 0.7,
      notes: `${jobNotes(job, { client: measured.result.clientCpuShare, service: measured.cpuShare })}. Bare: ${jobNotes(bareJob, { client: baseline.result.clientCpuShare, service: baseline.cpuShare, serviceLabel: 'server' })}`,
    }),
  ];
}
