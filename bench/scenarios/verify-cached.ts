import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { VerifyTokenRequestSchema, VerifyTokenResponseSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { startChild } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { grpcCall, grpcFrame, jsonCall, requireH2load, runH2load, type H2loadResult } from '../lib/h2load.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import { serviceCounters, wrongCalls } from './ext-authz.js';

const SETTINGS = {
  full: { warmupSeconds: 2, durationSeconds: 10, rounds: 2 },
  quick: { warmupSeconds: 1, durationSeconds: 4, rounds: 1 },
};
/** The load of the hot-path measurements (issue 16): 4 connections, 32 streams each, one h2load thread. */
export const HOT_PATH_LOAD = { connections: 4, streams: 32, threads: 1 };
const VERIFY_PATH = '/identity.v1.IdentityService/VerifyToken';

type Target = 'raw-grpc' | 'grpc' | 'raw-json' | 'json';

interface Run {
  readonly h2load: H2loadResult;
  readonly cpuShare: number;
  readonly wrong: number;
}

/**
 * VerifyToken with the cache on and one token sent again and again, over gRPC and over
 * Connect unary JSON, each beside a raw node:http2 responder answering the same call with a
 * constant (VerifyToken's own answer), driven by h2load, rounds interleaved in alternating
 * order, one server at a time: what the service's stack adds on a cache hit (issue 16).
 */
export async function verifyCached(ctx: BenchContext): Promise<ResultRow[]> {
  const { warmupSeconds, durationSeconds, rounds } = pick(ctx, SETTINGS);
  const h2loadVersion = requireH2load();
  const directory = await mkdtemp(join(tmpdir(), 'identity-bench-h2load-'));
  ctx.scope.defer('remove the h2load request bodies', () => rm(directory, { recursive: true, force: true }));
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const service = await startScenarioService(ctx, db, { OUTBOX_RELAY: 'off' });
  const [token] = (await mintTokens(service, db, 1)) as [string];
  const files = { grpc: join(directory, 'verify.bin'), json: join(directory, 'verify.json') };
  const grpcBody = grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token })));
  const jsonBody = JSON.stringify({ token });
  await writeFile(files.grpc, grpcBody);
  await writeFile(files.json, jsonBody);

  // h2load calls anything with HTTP 200 a success: one call of each, decoded, proves the bodies right.
  const url = `http://${service.target}${VERIFY_PATH}`;
  const viaGrpc = await grpcCall(url, grpcBody);
  if (viaGrpc.status !== '0' || fromBinary(VerifyTokenResponseSchema, viaGrpc.message).userId === '') throw new Error(`the sample VerifyToken over gRPC failed: grpc-status ${String(viaGrpc.status)}`);
  const viaJson = await jsonCall(url, jsonBody);
  if (viaJson.status !== 200 || !viaJson.body.includes('"userId"')) throw new Error(`the sample VerifyToken over Connect JSON failed: HTTP ${viaJson.status} ${viaJson.body}`);

  const raw = await startChild(new URL('../procs/raw-grpc-responder.ts', import.meta.url), ctx.scope);
  const rawPort = await raw.call<number>('listen', { answer: grpcFrame(viaGrpc.message).toString('base64'), json: viaJson.body });
  const rawUrl = `http://127.0.0.1:${rawPort}${VERIFY_PATH}`;

  const runs: Record<Target, Run[]> = { 'raw-grpc': [], grpc: [], 'raw-json': [], json: [] };
  const measure = async (target: Target): Promise<void> => {
    const isRaw = target.startsWith('raw');
    const isJson = target.endsWith('json');
    const before = isRaw ? undefined : await serviceCounters(service.adminUrl);
    const { result, cpuShare } = await withCpuShare(isRaw ? raw.pid : service.pid, () =>
      runH2load({
        url: isRaw ? rawUrl : url,
        bodyFile: isJson ? files.json : files.grpc,
        contentType: isJson ? 'application/json' : 'application/grpc',
        ...HOT_PATH_LOAD,
        warmupSeconds,
        durationSeconds,
      }),
    );
    const after = isRaw ? undefined : await serviceCounters(service.adminUrl);
    const wrong = before === undefined || after === undefined ? 0 : wrongCalls('verify', before, after);
    runs[target].push({ h2load: result, cpuShare, wrong });
    ctx.log(`${target}: ${Math.round(result.requestsPerSecond)}/s, mean ${result.meanMs.toFixed(2)} ms, server CPU ${Math.round(cpuShare * 100)} %${wrong > 0 ? `, ${wrong} wrong answers` : ''}`);
  };
  ctx.log(`${h2loadVersion}: ${rounds} round(s) of raw responder and VerifyToken over gRPC and Connect JSON, ${durationSeconds} s each`);
  for (let round = 0; round < rounds; round++) {
    const order: Target[] = round % 2 === 0 ? ['raw-grpc', 'grpc', 'raw-json', 'json'] : ['json', 'raw-json', 'grpc', 'raw-grpc'];
    for (const target of order) await measure(target);
  }
  await service.stop();
  await raw.close();

  const rate = (target: Target) => mean(runs[target].map((run) => run.h2load.requestsPerSecond));
  const notes = (target: Target) => {
    const list = runs[target];
    const errors = list.reduce((sum, run) => sum + run.h2load.failed + run.h2load.errored + run.h2load.timedOut + run.wrong, 0);
    const perRound = list.map((run) => Math.round(run.h2load.requestsPerSecond)).join(' / ');
    const cpu = mean(list.map((run) => run.cpuShare));
    const perCpuSecond = Math.round(mean(list.map((run) => run.h2load.requestsPerSecond / run.cpuShare)));
    return `${target}: ${perRound} /s by round, mean latency ${mean(list.map((run) => run.h2load.meanMs)).toFixed(2)} ms, ${errors === 0 ? 'no errors' : `${errors} errors`}, CPU ${Math.round(cpu * 100)} % (${perCpuSecond} calls per CPU-second)`;
  };
  return [
    ratioRow({
      scenario: 'verify-cached',
      measure: 'VerifyToken throughput, cache hit, gRPC (h2load)',
      service: { value: rate('grpc'), unit: '/s' },
      baseline: { value: rate('raw-grpc'), unit: '/s', label: 'raw node:http2 gRPC responder' },
      minRatio: 0.5,
      notes: `Target from issue 16. ${notes('grpc')}. ${notes('raw-grpc')}. ${runs.grpc[0]?.h2load.command ?? ''}`,
    }),
    ratioRow({
      scenario: 'verify-cached',
      measure: 'VerifyToken throughput, cache hit, Connect JSON (h2load)',
      service: { value: rate('json'), unit: '/s' },
      baseline: { value: rate('raw-json'), unit: '/s', label: 'bare node:http2 JSON responder' },
      minRatio: 0.4,
      notes: `Target from issue 16. ${notes('json')}. ${notes('raw-json')}`,
    }),
  ];
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
