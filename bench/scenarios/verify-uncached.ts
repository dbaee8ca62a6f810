import { runOnce } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { jobNotes } from '../lib/notes.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { fetchJwks, mintTokens } from '../lib/tokens.js';
import type { RawVerifyParams } from '../procs/raw-verify.js';

const SETTINGS = {
  full: { tokens: 20_000, warmupMs: 2_000, durationMs: 10_000, rawMs: 5_000 },
  quick: { tokens: 5_000, warmupMs: 1_000, durationMs: 4_000, rawMs: 2_000 },
};
/** Concurrent streams on one HTTP/2 connection (the service allows 100). */
export const VERIFY_STREAMS = 64;

/**
 * VerifyToken with the cache off (TOKEN_CACHE_SIZE=0), every call a different token, many
 * streams in flight, vs node:crypto's ES256 verify in a loop on one thread: the service's
 * verification runs on its event loop, one thread, so that is the ceiling it is held to.
 */
export async function verifyUncached(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db, { TOKEN_CACHE_SIZE: '0' });
  const tokens = await mintTokens(service, db, settings.tokens);
  const jwk = (await fetchJwks(service))[0]!;
  ctx.log(`service: VerifyToken, ${VERIFY_STREAMS} streams, ${tokens.length} distinct tokens, ${settings.durationMs / 1000} s`);
  const { result, cpuShare } = await withCpuShare(service.pid, () =>
    ctx.loadgen.run({
      jobs: [{ label: 'VerifyToken', target: service.target, request: { rpc: 'VerifyToken', tokens }, load: { kind: 'closed', concurrency: VERIFY_STREAMS } }],
      warmupMs: settings.warmupMs,
      durationMs: settings.durationMs,
    }),
  );
  await service.stop();
  const job = result.jobs[0]!;
  ctx.log(`baseline: node:crypto ES256 verify loop, ${settings.rawMs / 1000} s`);
  const params: RawVerifyParams = { jwk, tokens, warmupMs: 1_000, durationMs: settings.rawMs };
  const raw = await runOnce<{ rate: number }>(new URL('../procs/raw-verify.ts', import.meta.url), 'run', params, ctx.scope);
  return [
    ratioRow({
      scenario: 'verify-uncached',
      measure: 'VerifyToken throughput, cache off',
      service: { value: job.throughput, unit: '/s' },
      baseline: { value: raw.rate, unit: '/s', label: 'crypto.verify, 1 thread' },
      minRatio: 0.7,
      notes: jobNotes(job, { client: result.clientCpuShare, service: cpuShare }),
    }),
    {
      scenario: 'verify-uncached',
      measure: `VerifyToken p99 at saturation (${VERIFY_STREAMS} streams)`,
      service: { value: job.latency.p99, unit: 'ms' },
      target: 'information',
      notes: `p50 ${job.latency.p50.toFixed(2)} ms, p90 ${job.latency.p90.toFixed(2)} ms, max ${job.latency.max.toFixed(1)} ms`,
    },
  ];
}
