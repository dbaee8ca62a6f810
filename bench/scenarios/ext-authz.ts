import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CheckRequestSchema, CheckResponseSchema } from '../../src/gen/envoy/service/auth/v3/external_auth_pb.js';
import { VerifyTokenRequestSchema, VerifyTokenResponseSchema } from '../../src/gen/identity/v1/identity_pb.js';
import { startChild } from '../lib/child.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import { grpcCall, grpcFrame, requireH2load, runH2load, type H2loadResult } from '../lib/h2load.js';
import { withCpuShare } from '../lib/procfs.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { startScenarioService } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';

const SETTINGS = {
  full: { warmupSeconds: 2, durationSeconds: 10, rounds: 2 },
  quick: { warmupSeconds: 1, durationSeconds: 4, rounds: 1 },
};
/** The load of the hot-path measurements (issue 16): 4 connections, 32 streams each, one h2load thread. */
const LOAD = { connections: 4, streams: 32, threads: 1 };
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const VERIFY_PATH = '/identity.v1.IdentityService/VerifyToken';

type Target = 'raw' | 'check' | 'verify';

interface Run {
  readonly h2load: H2loadResult;
  readonly cpuShare: number;
  /** Calls that did not end as expected, from the server's own counters (h2load sees only HTTP 200). */
  readonly wrong: number;
}

/**
 * Envoy ext_authz Check over gRPC with one token sent again and again (a cache hit, as a mesh
 * sends the same token with each request of a session), beside VerifyToken with the same token
 * on the same service and a raw node:http2 gRPC responder returning Check's own answer as a
 * constant. Driven by h2load, the three interleaved round by round in one run, one at a time.
 */
export async function extAuthz(ctx: BenchContext): Promise<ResultRow[]> {
  const { warmupSeconds, durationSeconds, rounds } = pick(ctx, SETTINGS);
  const h2loadVersion = requireH2load();
  const directory = await mkdtemp(join(tmpdir(), 'identity-bench-h2load-'));
  ctx.scope.defer('remove the h2load request bodies', () => rm(directory, { recursive: true, force: true }));

  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  // No relay: nothing is registered, and an idle relay polling would steal from the baseline's turns.
  const service = await startScenarioService(ctx, db, { OUTBOX_RELAY: 'off' });
  const [token] = (await mintTokens(service, db, 1)) as [string];
  const userId = String((JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub);

  const bodies = {
    check: grpcFrame(toBinary(CheckRequestSchema, envoyCheckRequest(token))),
    verify: grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token }))),
  };
  const files = { check: join(directory, 'check.bin'), verify: join(directory, 'verify.bin') };
  await writeFile(files.check, bodies.check);
  await writeFile(files.verify, bodies.verify);

  // h2load calls anything with HTTP 200 a success: one call of each, decoded, proves the bodies right.
  const serviceUrl = `http://${service.target}`;
  const checked = await grpcCall(`${serviceUrl}${CHECK_PATH}`, bodies.check);
  const checkAnswer = fromBinary(CheckResponseSchema, checked.message);
  const allowedUser = checkAnswer.httpResponse.case === 'okResponse' ? checkAnswer.httpResponse.value.headers.find((h) => h.header?.key === 'x-user-id')?.header?.value : undefined;
  if (checked.status !== '0' || checkAnswer.status?.code !== 0 || allowedUser !== userId) {
    throw new Error(`the sample Check was not allowed for ${userId}: grpc-status ${String(checked.status)}, ${JSON.stringify(checkAnswer)}`);
  }
  const verified = await grpcCall(`${serviceUrl}${VERIFY_PATH}`, bodies.verify);
  if (verified.status !== '0' || fromBinary(VerifyTokenResponseSchema, verified.message).userId !== userId) {
    throw new Error(`the sample VerifyToken failed: grpc-status ${String(verified.status)}`);
  }

  const raw = await startChild(new URL('../procs/raw-grpc-responder.ts', import.meta.url), ctx.scope);
  const rawPort = await raw.call<number>('listen', { answer: grpcFrame(checked.message).toString('base64') });
  const rawUrl = `http://127.0.0.1:${rawPort}`;
  const rawSample = await grpcCall(`${rawUrl}${CHECK_PATH}`, bodies.check);
  if (rawSample.status !== '0' || !rawSample.message.equals(checked.message)) throw new Error('the raw responder did not answer Check with the constant');

  const runs: Record<Target, Run[]> = { raw: [], check: [], verify: [] };
  const measure = async (target: Target): Promise<void> => {
    const [pid, url, file] =
      target === 'raw' ? [raw.pid, `${rawUrl}${CHECK_PATH}`, files.check] : [service.pid, `${serviceUrl}${target === 'check' ? CHECK_PATH : VERIFY_PATH}`, files[target]];
    const before = target === 'raw' ? undefined : await serviceCounters(service.adminUrl);
    const { result, cpuShare } = await withCpuShare(pid, () => runH2load({ url, bodyFile: file, ...LOAD, warmupSeconds, durationSeconds }));
    const after = target === 'raw' ? undefined : await serviceCounters(service.adminUrl);
    const wrong = target === 'raw' || before === undefined || after === undefined ? 0 : wrongCalls(target, before, after);
    runs[target].push({ h2load: result, cpuShare, wrong });
    ctx.log(`${target}: ${Math.round(result.requestsPerSecond)}/s, mean ${result.meanMs.toFixed(2)} ms, server CPU ${Math.round(cpuShare * 100)} %${wrong > 0 ? `, ${wrong} wrong answers` : ''}`);
  };
  ctx.log(`${h2loadVersion}: ${rounds} round(s) of raw responder, Check and VerifyToken, ${durationSeconds} s each (-c ${LOAD.connections} -m ${LOAD.streams} -t ${LOAD.threads})`);
  for (let round = 0; round < rounds; round++) {
    // Each round in another order, so drift of the machine does not favour one side.
    const order: Target[] = round % 2 === 0 ? ['raw', 'check', 'verify'] : ['verify', 'check', 'raw'];
    for (const target of order) await measure(target);
  }
  await service.stop();
  await raw.close();

  const rate = (target: Target) => mean(runs[target].map((run) => run.h2load.requestsPerSecond));
  const notes = (target: Target, label: string) => {
    const list = runs[target];
    const errors = list.reduce((sum, run) => sum + run.h2load.failed + run.h2load.errored + run.h2load.timedOut + run.wrong, 0);
    const perRound = list.map((run) => Math.round(run.h2load.requestsPerSecond)).join(' / ');
    const meanMs = mean(list.map((run) => run.h2load.meanMs)).toFixed(2);
    const cpu = mean(list.map((run) => run.cpuShare));
    // Calls per second of the server's own CPU: what a busy machine's contention distorts least.
    const perCpuSecond = Math.round(mean(list.map((run) => run.h2load.requestsPerSecond / run.cpuShare)));
    return `${label}: ${perRound} /s by round, mean latency ${meanMs} ms, ${errors === 0 ? 'no errors' : `${errors} errors`}, ${target === 'raw' ? 'server' : 'service'} CPU ${Math.round(cpu * 100)} % (${perCpuSecond} calls per CPU-second)`;
  };
  const command = runs.check[0]?.h2load.command ?? '';
  const base = { scenario: 'ext-authz' };
  return [
    ratioRow({
      ...base,
      measure: 'Check throughput, cached token, gRPC (h2load)',
      service: { value: rate('check'), unit: '/s' },
      baseline: { value: rate('raw'), unit: '/s', label: 'raw node:http2 gRPC responder' },
      minRatio: 0.5,
      notes: `Target from issue 16. ${notes('check', 'Check')}. ${notes('raw', 'Raw')}. ${command}`,
    }),
    ratioRow({
      ...base,
      measure: 'VerifyToken throughput, cached token, gRPC (h2load)',
      service: { value: rate('verify'), unit: '/s' },
      baseline: { value: rate('raw'), unit: '/s', label: 'raw node:http2 gRPC responder' },
      minRatio: 0.5,
      notes: `Target from issue 16. ${notes('verify', 'VerifyToken')}`,
    }),
    ratioRow({
      ...base,
      measure: 'Check vs VerifyToken, same token',
      service: { value: rate('check'), unit: '/s' },
      baseline: { value: rate('verify'), unit: '/s', label: 'VerifyToken' },
      minRatio: 0.9,
      notes: `Issue 15: a Check must cost what a cached VerifyToken costs (its request, shaped as Envoy sends it, is larger). ${notes('check', 'Check')}. ${notes('verify', 'VerifyToken')}`,
    }),
  ];
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/** The CheckRequest an Istio sidecar sends for a GET with a Bearer token (see tests/helpers/envoy.ts). */
function envoyCheckRequest(token: string) {
  const requestId = randomUUID();
  const host = 'orders.shop.svc.cluster.local:8080';
  const now = Date.now();
  return create(CheckRequestSchema, {
    attributes: {
      source: { address: { address: { case: 'socketAddress', value: { address: '10.244.1.17', portSpecifier: { case: 'portValue', value: 47_612 } } } }, principal: 'spiffe://cluster.local/ns/shop/sa/frontend' },
      destination: { address: { address: { case: 'socketAddress', value: { address: '10.244.2.9', portSpecifier: { case: 'portValue', value: 8080 } } } }, principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
      request: {
        time: { seconds: BigInt(Math.floor(now / 1000)), nanos: (now % 1000) * 1_000_000 },
        http: {
          id: requestId,
          method: 'GET',
          path: '/orders/42?expand=items',
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
          size: -1n,
          headers: {
            ':authority': host,
            ':method': 'GET',
            ':path': '/orders/42?expand=items',
            ':scheme': 'http',
            accept: '*/*',
            authorization: `Bearer ${token}`,
            'user-agent': 'curl/8.5.0',
            'x-forwarded-proto': 'http',
            'x-request-id': requestId,
            'x-envoy-attempt-count': '1',
          },
        },
      },
    },
  });
}

export interface Counters {
  readonly handled: Record<string, number>;
  readonly checks: Record<string, number>;
}

/** grpc_server_handled_total by method and code, and ext_authz_checks_total by result. */
export async function serviceCounters(adminUrl: string): Promise<Counters> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const handled: Record<string, number> = {};
  for (const match of text.matchAll(/^grpc_server_handled_total\{grpc_type="unary",grpc_service="([^"]+)",grpc_method="([^"]+)",grpc_code="([^"]+)"\} (\S+)$/gm)) {
    handled[`${match[1]}/${match[2]} ${match[3]}`] = Number(match[4]);
  }
  const checks: Record<string, number> = {};
  for (const match of text.matchAll(/^ext_authz_checks_total\{result="([^"]+)"\} (\S+)$/gm)) checks[match[1]!] = Number(match[2]);
  return { handled, checks };
}

/** Calls in the window that ended other than OK (and, for Check, other than allowed). */
export function wrongCalls(target: 'check' | 'verify', before: Counters, after: Counters): number {
  const method = target === 'check' ? CHECK_PATH.slice(1) : VERIFY_PATH.slice(1);
  let wrong = 0;
  for (const [key, value] of Object.entries(after.handled)) {
    // Canceled: calls h2load abandoned when its time was up (it cuts the streams still in flight); not answers.
    if (key.startsWith(`${method} `) && !key.endsWith(' OK') && !key.endsWith(' Canceled')) wrong += value - (before.handled[key] ?? 0);
  }
  if (target === 'check') {
    for (const result of ['denied', 'unavailable']) wrong += (after.checks[result] ?? 0) - (before.checks[result] ?? 0);
  }
  return wrong;
}
