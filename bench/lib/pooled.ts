import type { JobResult } from './loadgen.js';
import { summarize } from './stats.js';

/**
 * One job's runs taken as one: counts, errors and seconds added up, latency over every sample
 * (the runs must have kept them, Job.keepSamples), the worst start lag of any run.
 */
export function pooled(runs: readonly JobResult[]): JobResult {
  if (runs.length === 0) throw new Error('nothing to pool');
  const samples = runs.flatMap((run) => {
    if (run.samples === undefined) throw new Error(`${run.label}: a run to pool kept no samples`);
    return run.samples;
  });
  const errors: Record<string, number> = {};
  for (const run of runs) for (const [name, count] of Object.entries(run.errors)) errors[name] = (errors[name] ?? 0) + count;
  const firstError = runs.find((run) => run.firstError !== undefined)?.firstError;
  const seconds = runs.reduce((sum, run) => sum + run.seconds, 0);
  const lags = runs.flatMap((run) => (run.maxStartLagMs === undefined ? [] : [run.maxStartLagMs]));
  return {
    label: runs[0]!.label,
    ok: samples.length,
    errors,
    ...(firstError !== undefined && { firstError }),
    seconds,
    throughput: samples.length / seconds,
    latency: summarize(samples),
    ...(lags.length > 0 && { maxStartLagMs: Math.max(...lags) }),
  };
}
