import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { VerifyTokenRequestSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { runOnce } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { grpcCall, grpcFrame, requireH2load, runH2load } from '../lib/h2load.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { fetchJwks, mintTokens } from '../lib/tokens.js';
import type { RawVerifyParams } from '../procs/raw-verify.js';
import { serviceCounters, wrongCalls } from './ext-authz.js';
import { HOT_PATH_LOAD } from './verify-cached.js';

const SETTINGS = {
  full: { tokens: 128, warmupSeconds: 2, durationSeconds: 10, rawMs: 5_000 },
  quick: { tokens: 128, warmupSeconds: 1, durationSeconds: 4, rawMs: 2_000 },
};
const VERIFY_PATH = '/identity.v1.IdentityService/VerifyToken';
/** Concurrent streams on one HTTP/2 connection for the grpc-js load of other scenarios (the service allows 100). */
export const VERIFY_STREAMS = 64;

/**
 * VerifyToken with the cache off (TOKEN_CACHE_SIZE=0), so that every call verifies its
 * signature from scratch, driven by h2load, vs node:crypto's ES256 verify in a loop on one
 * thread over 128 distinct tokens: the service verifies on its event loop, one thread, so that
 * is the ceiling it is held to. h2load sends one prepared body, so the service sees one token
 * again and again; with the cache off nothing is remembered between calls (the provider keeps
 * no other memo), which makes each call the work a new token costs.
 */
export async function verifyUncached(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const h2loadVersion = requireH2load();
  const directory = await mkdtemp(join(tmpdir(), 'identity-bench-h2load-'));
  ctx.scope.defer('remove the h2load request body', () => rm(directory, { recursive: true, force: true }));
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db, { TOKEN_CACHE_SIZE: '0', OUTBOX_RELAY: 'off' });
  const tokens = await mintTokens(service, db, settings.tokens);
  const jwk = (await fetchJwks(service))[0]!;
  const body = grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: tokens[0]! })));
  const file = join(directory, 'verify.bin');
  await writeFile(file, body);
  const url = `http://${service.target}${VERIFY_PATH}`;
  const sample = await grpcCall(url, body);
  if (sample.status !== '0') throw new Error(`the sample VerifyToken failed: grpc-status ${String(sample.status)}`);

  ctx.log(`${h2loadVersion}: VerifyToken, cache off, ${settings.durationSeconds} s`);
  const before = await serviceCounters(service.adminUrl);
  const { result, cpuShare } = await withCpuShare(service.pid, () =>
    runH2load({ url, bodyFile: file, ...HOT_PATH_LOAD, warmupSeconds: settings.warmupSeconds, durationSeconds: settings.durationSeconds }),
  );
  const wrong = wrongCalls('verify', before, await serviceCounters(service.adminUrl));
  await service.stop();
  ctx.log(`baseline: node:crypto ES256 verify loop over ${tokens.length} tokens, ${settings.rawMs / 1000} s`);
  const params: RawVerifyParams = { jwk, tokens, warmupMs: 1_000, durationMs: settings.rawMs };
  const raw = await runOnce<{ rate: number }>(new URL('../procs/raw-verify.ts', import.meta.url), 'run', params, ctx.scope);
  const errors = result.failed + result.errored + result.timedOut + wrong;
  return [
    ratioRow({
      scenario: 'verify-uncached',
      measure: 'VerifyToken throughput, cache off, gRPC (h2load)',
      service: { value: result.requestsPerSecond, unit: '/s' },
      baseline: { value: raw.rate, unit: '/s', label: `crypto.verify, 1 thread, ${tokens.length} tokens` },
      minRatio: 0.7,
      notes: `Target from issue 16. Mean latency ${result.meanMs.toFixed(2)} ms, ${errors === 0 ? 'no errors' : `${errors} errors`}, service CPU ${Math.round(cpuShare * 100)} % (${Math.round(result.requestsPerSecond / cpuShare)} calls per CPU-second). ${result.command}`,
    }),
  ];
}
