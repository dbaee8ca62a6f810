import { create, toBinary } from '@bufbuild/protobuf';
import { VerifyTokenRequestSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { startChild } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { grpcCall, grpcFrame } from '../lib/h2load.js';
import { createDatabase } from '../lib/database.js';
import { errorCount, errorText, jobNotes } from '../lib/notes.js';
import { limitRow, ratioRow, type ResultRow } from '../lib/report.js';
import { seedDatabase } from '../lib/seed.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import type { RawCompareParams } from '../procs/raw-compare.js';
import type { Job, JobResult, RunResult } from '../lib/loadgen.js';
import { pooled } from '../lib/pooled.js';
import { authenticateAtSaturation, RAW_COMPARE } from './authenticate.js';

const SETTINGS = {
  full: { users: 10_000, tokens: 42_000, verifyPerSecond: 500, warmupMs: 30_000, rounds: 4, roundWarmupMs: 1_000, roundMs: 8_000 },
  quick: { users: 2_000, tokens: 9_000, verifyPerSecond: 500, warmupMs: 1_500, rounds: 2, roundWarmupMs: 500, roundMs: 3_000 },
};

/**
 * VerifyToken at a fixed rate, distinct tokens (so mostly real verifications), while
 * Authenticate keeps every hashing thread (one per core by default) busy: bcrypt must not delay
 * token checks beyond what the machine itself allows (a raw responder at the same rate beside
 * raw bcrypt), and token checks must not slow logins below that raw compare rate.
 *
 * The service and its baseline take turns, round by round, and each side's rounds are pooled:
 * the machine's speed drifts by a tenth and more over a minute here (both loads' CPU per call
 * moves with it), and one long window of each, one after the other, put that drift into the
 * ratio. While the baseline runs, the service is paused (SIGSTOP), so it takes nothing from it.
 *
 * The rounds start after half a minute of the same load: a replica serves for hours, and at a few
 * logins a second V8 has not yet optimized the login path in the first seconds of a process (in
 * rounds taken from its start, the service's share of the cores for bcrypt rose for about
 * 40 s, by 14 points of a core, while the baseline's rose by 6; the client warms up too).
 * Rounds of 8 s: a round counts only some 65 compares a side, so one more or less is 1.5 %.
 */
export async function mixed(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const service = await startScenarioService(ctx, db);
  const tokens = await mintTokens(service, db, settings.tokens);
  const answer = await grpcCall(`http://${service.target}/identity.v1.IdentityService/VerifyToken`, grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: tokens[0]! }))));
  // The same two loads with nothing of the service in between: a raw node:http2 responder
  // answering VerifyToken with a constant at the same rate, while bcrypt compares run on as
  // many threads as the service hashes with. Its p99 is what the machine itself allows.
  const bare = await startChild(new URL('../procs/raw-grpc-responder.ts', import.meta.url), ctx.scope);
  const bareTarget = `127.0.0.1:${await bare.call<number>('listen', { answer: grpcFrame(answer.message).toString('base64') })}`;
  const compare = await startChild(RAW_COMPARE, ctx.scope);
  await compare.call('prepare', { cost: ctx.bcryptCost });

  // A run gets as many tokens as it calls for, and a second's more; each run of the service
  // starts past the last one's, so no token is checked twice (no cache hit).
  let used = 1;
  const verify = (target: string, warmupMs: number, durationMs: number): Job => {
    const end = used + Math.ceil((settings.verifyPerSecond * (warmupMs + durationMs)) / 1000) + settings.verifyPerSecond;
    if (end > tokens.length) throw new Error(`mixed needs more than ${tokens.length} tokens`);
    const slice = tokens.slice(used, end);
    if (target === service.target) used = end;
    return { label: 'VerifyToken', target, request: { rpc: 'VerifyToken', tokens: slice }, load: { kind: 'open', ratePerSecond: settings.verifyPerSecond }, keepSamples: true };
  };
  const concurrency = ctx.hashWorkers + 2;
  const logins: Job = { ...authenticateAtSaturation(service.target, users, concurrency), keepSamples: true };
  ctx.log(`${settings.rounds} rounds of ${settings.roundMs / 1000} s each, taking turns: the service (VerifyToken ${settings.verifyPerSecond}/s + Authenticate ${concurrency} in flight), then the raw responder at the same rate beside bcrypt compare on ${ctx.hashWorkers} thread(s)`);
  await ctx.loadgen.run({ jobs: [verify(service.target, settings.warmupMs, 0), logins], warmupMs: settings.warmupMs, durationMs: 0 });
  const serviceRuns: RunResult[] = [];
  const bareRuns: JobResult[] = [];
  let compares = 0;
  for (let round = 1; round <= settings.rounds; round++) {
    const { roundWarmupMs: warmupMs, roundMs: durationMs } = settings;
    const run = await ctx.loadgen.run({ jobs: [verify(service.target, warmupMs, durationMs), logins], warmupMs, durationMs });
    serviceRuns.push(run);
    const [raw, bareRun] = await paused(service.pid, () =>
      Promise.all([
        compare.call<{ count: number }>('run', { cost: ctx.bcryptCost, threads: ctx.hashWorkers, warmupMs, durationMs } satisfies RawCompareParams),
        ctx.loadgen.run({ jobs: [verify(bareTarget, warmupMs, durationMs)], warmupMs, durationMs }),
      ]),
    );
    compares += raw.count;
    bareRuns.push(bareRun.jobs[0]!);
    ctx.log(`round ${round}: Authenticate ${run.jobs[1]!.throughput.toFixed(2)}/s, compare ${(raw.count / (durationMs / 1000)).toFixed(2)}/s; VerifyToken p99 ${run.jobs[0]!.latency.p99.toFixed(2)} ms, raw responder's ${bareRun.jobs[0]!.latency.p99.toFixed(2)} ms`);
  }
  const handlingP99 = await serverHandlingP99(service.adminUrl, 'VerifyToken');
  await Promise.all([service.stop(), bare.close(), compare.close()]);

  const verifyResult = pooled(serviceRuns.map((run) => run.jobs[0]!));
  const login = pooled(serviceRuns.map((run) => run.jobs[1]!));
  const bareVerify = pooled(bareRuns);
  const rawRate = compares / bareVerify.seconds;
  const clientCpu = serviceRuns.reduce((sum, run) => sum + run.clientCpuShare, 0) / serviceRuns.length;
  const p99Limit = Math.max(5, 1.5 * bareVerify.latency.p99);
  return [
    limitRow({
      scenario: 'mixed',
      measure: `VerifyToken p99 at ${settings.verifyPerSecond}/s during login saturation`,
      service: { value: verifyResult.latency.p99, unit: 'ms' },
      limit: p99Limit,
      notes: `limit max(5 ms, 1.5 × ${bareVerify.latency.p99.toFixed(2)} ms, the raw responder's p99 at the same rate beside raw bcrypt on ${ctx.hashWorkers} thread(s), ${settings.rounds} rounds taking turns with the service's; its ${errorText(bareVerify)}). ${jobNotes(verifyResult, { client: clientCpu })}; client start lag max ${(verifyResult.maxStartLagMs ?? 0).toFixed(1)} ms`,
    }),
    limitRow({
      scenario: 'mixed',
      measure: 'VerifyToken p99 inside the service (grpc_server_handling_seconds)',
      service: { value: handlingP99 * 1000, unit: 'ms' },
      limit: 5,
      notes: 'upper bound of the histogram bucket holding the 99th percentile, from the first interceptor to the answer; the client-side figure above adds HTTP/2, both event loops and the scheduler of a machine whose 2 cores are shared by client, service, bcrypt and PostgreSQL',
    }),
    {
      scenario: 'mixed',
      measure: 'VerifyToken errors during login saturation',
      service: { value: errorCount(verifyResult), unit: 'n' },
      target: '= 0',
      pass: errorCount(verifyResult) === 0,
      notes: errorText(verifyResult),
    },
    ratioRow({
      scenario: 'mixed',
      measure: 'Authenticate throughput during VerifyToken load',
      service: { value: login.throughput, unit: '/s' },
      baseline: { value: rawRate, unit: '/s', label: `compare ×${ctx.hashWorkers} threads beside the raw responder at the same rate` },
      minRatio: 0.9,
      notes: `${jobNotes(login)}; ${settings.rounds} rounds of ${settings.roundMs / 1000} s, taking turns with the baseline's`,
    }),
  ];
}

/** Runs `work` with process `pid` stopped (SIGSTOP), and lets it go on (SIGCONT) whatever happens. */
async function paused<T>(pid: number, work: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGSTOP');
  try {
    return await work();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

/**
 * The service's own view of a method's latency: the upper bound of the
 * grpc_server_handling_seconds bucket that holds the 99th percentile of every call so far.
 */
async function serverHandlingP99(adminUrl: string, method: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const buckets = [...text.matchAll(/^grpc_server_handling_seconds_bucket\{le="([^"]+)",([^}]*)\} (\d+)$/gm)]
    .filter((match) => match[2]!.includes(`grpc_method="${method}"`))
    .map((match) => ({ le: match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]), count: Number(match[3]) }));
  const total = buckets.find((bucket) => bucket.le === Number.POSITIVE_INFINITY)?.count ?? 0;
  return buckets.find((bucket) => bucket.count >= total * 0.99)?.le ?? Number.NaN;
}
