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
import { authenticateAtSaturation, rawCompareRate } from './authenticate.js';

const SETTINGS = {
  full: { users: 10_000, tokens: 20_000, verifyPerSecond: 500, warmupMs: 3_000, durationMs: 15_000 },
  quick: { users: 2_000, tokens: 5_000, verifyPerSecond: 500, warmupMs: 1_500, durationMs: 6_000 },
};

/**
 * VerifyToken at a fixed rate, distinct tokens (so mostly real verifications), while
 * Authenticate keeps every hashing thread (one per core by default) busy: bcrypt must not delay
 * token checks beyond what the machine itself allows (a raw responder at the same rate beside
 * raw bcrypt, measured right after), and token checks must not slow logins below that raw
 * compare rate.
 */
export async function mixed(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const service = await startScenarioService(ctx, db);
  const tokens = await mintTokens(service, db, settings.tokens);
  const concurrency = ctx.hashWorkers + 2;
  ctx.log(`service: VerifyToken ${settings.verifyPerSecond}/s + Authenticate ${concurrency} in flight, ${settings.durationMs / 1000} s`);
  const result = await ctx.loadgen.run({
    jobs: [
      { label: 'VerifyToken', target: service.target, request: { rpc: 'VerifyToken', tokens }, load: { kind: 'open', ratePerSecond: settings.verifyPerSecond } },
      authenticateAtSaturation(service.target, users, concurrency),
    ],
    warmupMs: settings.warmupMs,
    durationMs: settings.durationMs,
  });
  const handlingP99 = await serverHandlingP99(service.adminUrl, 'VerifyToken');
  const answer = await grpcCall(`http://${service.target}/identity.v1.IdentityService/VerifyToken`, grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: tokens[0]! }))));
  await service.stop();
  const [verify, login] = [result.jobs[0]!, result.jobs[1]!];

  // The same two loads with nothing of the service in between: a raw node:http2 responder
  // answering VerifyToken with a constant at the same rate, while bcrypt compares run on as
  // many threads as the service hashes with. Its p99 is what the machine itself allows.
  const bare = await startChild(new URL('../procs/raw-grpc-responder.ts', import.meta.url), ctx.scope);
  const barePort = await bare.call<number>('listen', { answer: grpcFrame(answer.message).toString('base64') });
  ctx.log(`baseline: raw responder VerifyToken ${settings.verifyPerSecond}/s + bcrypt compare on ${ctx.hashWorkers} thread(s), ${settings.durationMs / 1000} s`);
  const [raw, bareResult] = await Promise.all([
    rawCompareRate(ctx, ctx.hashWorkers, settings.warmupMs, settings.durationMs),
    ctx.loadgen.run({
      jobs: [{ label: 'VerifyToken', target: `127.0.0.1:${barePort}`, request: { rpc: 'VerifyToken', tokens }, load: { kind: 'open', ratePerSecond: settings.verifyPerSecond } }],
      warmupMs: settings.warmupMs,
      durationMs: settings.durationMs,
    }),
  ]);
  await bare.close();
  const bareVerify = bareResult.jobs[0]!;
  const p99Limit = Math.max(5, 1.5 * bareVerify.latency.p99);
  return [
    limitRow({
      scenario: 'mixed',
      measure: `VerifyToken p99 at ${settings.verifyPerSecond}/s during login saturation`,
      service: { value: verify.latency.p99, unit: 'ms' },
      limit: p99Limit,
      notes: `limit max(5 ms, 1.5 × ${bareVerify.latency.p99.toFixed(2)} ms, the raw responder's p99 at the same rate beside raw bcrypt on ${ctx.hashWorkers} thread(s); its ${errorText(bareVerify)}). ${jobNotes(verify, { client: result.clientCpuShare })}; client start lag max ${(verify.maxStartLagMs ?? 0).toFixed(1)} ms`,
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
      service: { value: errorCount(verify), unit: 'n' },
      target: '= 0',
      pass: errorCount(verify) === 0,
      notes: errorText(verify),
    },
    ratioRow({
      scenario: 'mixed',
      measure: 'Authenticate throughput during VerifyToken load',
      service: { value: login.throughput, unit: '/s' },
      baseline: { value: raw, unit: '/s', label: `compare ×${ctx.hashWorkers} threads beside the raw responder at the same rate` },
      minRatio: 0.9,
      notes: jobNotes(login),
    }),
  ];
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
