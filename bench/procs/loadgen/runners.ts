import { nowMs } from '../../lib/clock.js';
import { paced } from '../../lib/pacer.js';
import { summarize } from '../../lib/stats.js';
import { IdentityClient, statusName, type CallOutcome } from './client.js';
import { requestSource } from './requests.js';
import type { Job, JobResult, RunResult, RunSpec, SequenceResult, SequenceSpec, Step, StepResult } from './spec.js';

/** Tallies one job's or step's calls: latencies of successes, errors by status. */
class Tally {
  readonly latencies: number[] = [];
  readonly errors: Record<string, number> = {};
  firstError: string | undefined;

  constructor(private readonly expect: string) {}

  add(outcome: CallOutcome, latencyMs: number): void {
    const name = statusName(outcome.code);
    if (name === this.expect) {
      this.latencies.push(latencyMs);
      return;
    }
    this.errors[name] = (this.errors[name] ?? 0) + 1;
    this.firstError ??= `${name}: ${outcome.details ?? ''}`;
  }
}

interface Window {
  readonly from: number;
  readonly to: number;
}

/** Runs every job of `spec` at once; counts the calls that end inside the window after warm-up. */
export async function run(spec: RunSpec): Promise<RunResult> {
  const cpuBefore = process.cpuUsage();
  const started = nowMs();
  const window = { from: started + spec.warmupMs, to: started + spec.warmupMs + spec.durationMs };
  const results = await Promise.all(spec.jobs.map((job) => runJob(job, window)));
  const cpu = process.cpuUsage(cpuBefore);
  return { jobs: results, clientCpuShare: (cpu.user + cpu.system) / 1000 / (nowMs() - started) };
}

async function runJob(job: Job, window: Window): Promise<JobResult> {
  const clients = Array.from({ length: job.connections ?? 1 }, () => new IdentityClient(job.target));
  const tally = new Tally(job.expect ?? 'OK');
  const next = requestSource(job.request);
  let sent = 0;
  let maxStartLagMs: number | undefined;
  const call = async (plannedAt: number) => {
    const n = sent++;
    const { rpc, request } = next(n);
    const start = nowMs();
    const outcome = await clients[n % clients.length]!.call(rpc, request);
    const end = nowMs();
    if (end >= window.from && end < window.to) tally.add(outcome, end - start);
    if (start >= window.from) maxStartLagMs = Math.max(maxStartLagMs ?? 0, start - plannedAt);
  };
  try {
    if (job.load.kind === 'closed') {
      await Promise.all(
        Array.from({ length: job.load.concurrency }, async () => {
          while (nowMs() < window.to) await call(nowMs());
        }),
      );
    } else {
      await paced(job.load.ratePerSecond, window.to, call);
    }
  } finally {
    for (const client of clients) client.close();
  }
  const seconds = (window.to - window.from) / 1000;
  return {
    label: job.label,
    ok: tally.latencies.length,
    errors: tally.errors,
    ...(tally.firstError !== undefined && { firstError: tally.firstError }),
    seconds,
    throughput: tally.latencies.length / seconds,
    latency: summarize(tally.latencies),
    ...(job.load.kind === 'open' && { maxStartLagMs: maxStartLagMs ?? 0 }),
    ...(job.keepSamples === true && { samples: tally.latencies }),
  };
}

/** One call at a time, round after round over the steps; latency per step. */
export async function sequence(spec: SequenceSpec): Promise<SequenceResult> {
  const clients = new Map<string, IdentityClient>();
  const clientFor = (target: string) => clients.get(target) ?? clients.set(target, new IdentityClient(target)).get(target)!;
  const steps = spec.steps.map((step: Step) => ({ step, next: requestSource(step.request), tally: new Tally(step.expect ?? 'OK') }));
  try {
    for (let round = 0; round < spec.warmupRounds + spec.rounds; round++) {
      const first = spec.rotate ? round % steps.length : 0;
      for (let i = 0; i < steps.length; i++) {
        const { step, next, tally } = steps[(first + i) % steps.length]!;
        const { rpc, request } = next(round);
        const start = nowMs();
        const outcome = await clientFor(step.target).call(rpc, request);
        if (round >= spec.warmupRounds) tally.add(outcome, nowMs() - start);
      }
    }
  } finally {
    for (const client of clients.values()) client.close();
  }
  return {
    steps: steps.map(({ step, tally }): StepResult => ({
      label: step.label,
      ok: tally.latencies.length,
      errors: tally.errors,
      ...(tally.firstError !== undefined && { firstError: tally.firstError }),
      latency: summarize(tally.latencies),
    })),
  };
}
