import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import pg from 'pg';
import pino from 'pino';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { InMemoryRevocationList } from '../../src/infrastructure/revocation/in-memory-revocation-list.js';
import { nowMs } from '../lib/clock.js';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase, type BenchDatabase } from '../lib/database.js';
import type { RunSpec } from '../lib/loadgen.js';
import { withCpuShare } from '../lib/procfs.js';
import { limitRow, ratioRow, toMB, type ResultRow } from '../lib/report.js';
import { startScenarioService, type ServiceHandle } from '../lib/service.js';
import { summarize } from '../lib/stats.js';
import { mintTokens } from '../lib/tokens.js';
import { VERIFY_STREAMS } from './verify-uncached.js';

const SETTINGS = {
  full: { warmupMs: 2_000, durationMs: 10_000, refreshSeconds: 10, revoked: 100_000, propagations: 200 },
  quick: { warmupMs: 1_000, durationMs: 4_000, refreshSeconds: 3, revoked: 20_000, propagations: 40 },
};
/** Concurrent refreshers, each on a session of its own (a client refreshes one session at a time). */
const REFRESHERS = 16;

const digest = (token: string) => createHash('sha256').update(token).digest();

/** One user and `count` live sessions whose refresh tokens the bench knows. */
async function seedSessions(db: BenchDatabase, count: number, revoked = false): Promise<{ userId: string; sessions: { id: string; refreshToken: string }[] }> {
  const userId = randomUUID();
  const now = new Date();
  await db.knex('users').insert({
    id: userId,
    email: `${userId}@bench.example`,
    email_key: `${userId}@bench.example`,
    password_hash: 'x',
    first_name: 'Bench',
    last_name: 'Sessions',
    status: 'active',
    created_at: now,
    updated_at: now,
  });
  const sessions = Array.from({ length: count }, () => ({ id: randomUUID(), refreshToken: randomBytes(32).toString('base64url') }));
  for (let i = 0; i < sessions.length; i += 5_000) {
    const batch = sessions.slice(i, i + 5_000);
    await db.knex('sessions').insert(
      batch.map((s) => ({
        id: s.id,
        user_id: userId,
        refresh_token_hash: digest(s.refreshToken),
        created_at: now,
        last_refreshed_at: now,
        idle_expires_at: new Date(now.getTime() + 86_400_000),
        expires_at: new Date(now.getTime() + 86_400_000),
        revoked_at: revoked ? now : null,
        revoked_reason: revoked ? 'admin' : null,
        client_address: '127.0.0.1',
      })),
    );
    await db.knex('refresh_tokens').insert(batch.map((s) => ({ token_hash: digest(s.refreshToken), session_id: s.id, issued_at: now })));
  }
  return { userId, sessions };
}

/** Runs `refresh(worker)` in REFRESHERS closed loops for `seconds`; completions per second. */
async function closedLoop(seconds: number, refresh: (worker: number) => Promise<void>): Promise<number> {
  const end = nowMs() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: REFRESHERS }, async (_, worker) => {
      while (nowMs() < end) {
        await refresh(worker);
        done++;
      }
    }),
  );
  return done / seconds;
}

/**
 * RefreshToken through the service (over gRPC from this process) vs a bare script doing the
 * same transaction on the same database (lock the session row with its user's status, update
 * the session, insert the successor token: the "lock, update, insert"), at the same
 * concurrency: what the RPC, the domain and the signing of the access token add.
 */
async function refreshThroughput(ctx: BenchContext, db: BenchDatabase, service: ServiceHandle, seconds: number): Promise<ResultRow> {
  const client = createClient(IdentityService, createGrpcTransport({ baseUrl: `http://${service.target}` }));
  const viaService = (await seedSessions(db, REFRESHERS)).sessions.map((s) => s.refreshToken);
  ctx.log(`service: RefreshToken, ${REFRESHERS} sessions refreshed in closed loops, ${seconds} s`);
  const measured = await withCpuShare(service.pid, () =>
    closedLoop(seconds, async (worker) => {
      viaService[worker] = (await client.refreshToken({ refreshToken: viaService[worker]! })).refreshToken;
    }),
  );

  const bare = (await seedSessions(db, REFRESHERS)).sessions.map((s) => s.refreshToken);
  const pool = new pg.Pool({ connectionString: db.url, max: REFRESHERS });
  ctx.log(`baseline: the same transaction from a bare pg script, ${seconds} s`);
  const baseline = await closedLoop(seconds, async (worker) => {
    const connection = await pool.connect();
    try {
      await connection.query('begin');
      const { rows } = await connection.query<{ id: string; user_id: string; refresh_token_hash: Buffer }>(
        'select s.*, u.status from refresh_tokens t join sessions s on s.id = t.session_id join users u on u.id = s.user_id where t.token_hash = $1 limit 1 for update of s',
        [digest(bare[worker]!)],
      );
      const session = rows[0]!;
      const next = randomBytes(32).toString('base64url');
      await connection.query('update sessions set refresh_token_hash = $1, previous_refresh_token_hash = $2, last_refreshed_at = now(), idle_expires_at = now() + interval \'14 days\' where id = $3', [
        digest(next),
        session.refresh_token_hash,
        session.id,
      ]);
      await connection.query('insert into refresh_tokens (token_hash, session_id, issued_at) values ($1, $2, now())', [digest(next), session.id]);
      await connection.query('commit');
      bare[worker] = next;
    } finally {
      connection.release();
    }
  });
  await pool.end();
  return ratioRow({
    scenario: 'sessions',
    measure: `RefreshToken throughput, ${REFRESHERS} sessions in closed loops`,
    service: { value: measured.result, unit: '/s' },
    baseline: { value: baseline, unit: '/s', label: 'bare pg transaction' },
    minRatio: 0.7,
    notes: `service CPU ${(measured.cpuShare * 100).toFixed(0)} % of a core (${Math.round(measured.result / measured.cpuShare)} refreshes per CPU-second); the service also signs an ES256 access token per refresh (jose, libuv's pool) inside the transaction, and the client (Connect-ES over gRPC) runs in the bench process`,
  });
}

/** A service holding `revoked` revoked sessions in memory, and a token (with a sid) it accepts. */
async function serviceWithRevocations(ctx: BenchContext, revoked: number) {
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  if (revoked > 0) await seedSessions(db, revoked, true);
  const service = await startScenarioService(ctx, db);
  const { userId, sessions } = await seedSessions(db, 1);
  const [token] = await mintTokens(service, db, 1, { userId, sessionId: sessions[0]!.id });
  return { service, token: token!, entries: await gauge(service, 'revocation_entries{kind="session"}'), heap: await gauge(service, 'nodejs_heap_size_used_bytes') };
}

const ROUNDS = 4;

/**
 * VerifyToken (cache hit) on a service with `revoked` revoked sessions and on one with none,
 * in ROUNDS alternating rounds so that a change in the machine's load hits both alike.
 */
async function verifyWithRevocations(ctx: BenchContext, revoked: number, warmupMs: number, durationMs: number) {
  const [none, many] = [await serviceWithRevocations(ctx, 0), await serviceWithRevocations(ctx, revoked)];
  const totals = new Map<typeof none, { calls: number; seconds: number; cpuSeconds: number; p99: number[] }>([
    [none, { calls: 0, seconds: 0, cpuSeconds: 0, p99: [] }],
    [many, { calls: 0, seconds: 0, cpuSeconds: 0, p99: [] }],
  ]);
  ctx.log(`VerifyToken (cached), ${many.entries} revoked sessions in memory vs none, ${ROUNDS} alternating rounds of ${durationMs / ROUNDS / 1000} s each`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? [none, many] : [many, none]) {
      const load: RunSpec = {
        jobs: [{ label: 'VerifyToken', target: side.service.target, request: { rpc: 'VerifyToken', tokens: [side.token] }, load: { kind: 'closed', concurrency: VERIFY_STREAMS } }],
        warmupMs: round === 0 ? warmupMs : 500,
        durationMs: durationMs / ROUNDS,
      };
      const measured = await withCpuShare(side.service.pid, () => ctx.loadgen.run(load));
      const job = measured.result.jobs[0]!;
      const total = totals.get(side)!;
      const seconds = durationMs / ROUNDS / 1000;
      total.calls += job.throughput * seconds;
      total.seconds += seconds;
      total.cpuSeconds += measured.cpuShare * seconds;
      total.p99.push(job.latency.p99);
    }
  }
  await Promise.all([none.service.stop(), many.service.stop()]);
  const figures = (side: typeof none) => {
    const total = totals.get(side)!;
    return { throughput: total.calls / total.seconds, perCpuSecond: total.calls / total.cpuSeconds, p99: Math.max(...total.p99), entries: side.entries, heap: side.heap };
  };
  return { none: figures(none), many: figures(many) };
}

async function gauge(service: ServiceHandle, series: string): Promise<number> {
  const text = await (await fetch(`${service.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}

/** Heap bytes that `count` revoked sessions take in the list, measured in this process with forced GCs. */
function listBytes(count: number): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const list = new InMemoryRevocationList({ clock: { now: () => new Date() }, horizonSeconds: 930, metrics: createMetrics(), logger: pino({ level: 'silent' }) });
  gc();
  const before = process.memoryUsage().heapUsed;
  const now = Date.now();
  // Flat strings, as the service gets ids from pg rows and JSON (randomUUID's are built by concatenation).
  for (let i = 0; i < count; i++) list.revokeSession(Buffer.from(randomUUID()).toString('latin1'), now);
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  if (list.size.sessions !== count) throw new Error('the list lost entries');
  return bytes;
}

/**
 * Revocation propagation between two replicas on one database: a Logout through A, then
 * VerifyToken through B polled every 2 ms until it refuses. The time from A's answer (the
 * commit) to B's first refusal is an upper bound of commit → enforced on B.
 */
async function propagation(ctx: BenchContext, db: BenchDatabase, count: number): Promise<ResultRow[]> {
  const [a, b] = [await startScenarioService(ctx, db), await startScenarioService(ctx, db)];
  const { userId, sessions } = await seedSessions(db, count);
  const transport = (service: ServiceHandle) => createGrpcTransport({ baseUrl: `http://${service.target}` });
  const clientA = createClient(IdentityService, transport(a));
  const clientB = createClient(IdentityService, transport(b));
  const samples: number[] = [];
  ctx.log(`propagation: ${count} logouts through A, each polled on B`);
  for (const session of sessions) {
    const [token] = await mintTokens(a, db, 1, { userId, sessionId: session.id });
    await clientB.verifyToken({ token: token! });
    await clientA.logout({ refreshToken: session.refreshToken });
    const committed = nowMs();
    for (;;) {
      try {
        await clientB.verifyToken({ token: token! });
      } catch (error) {
        if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
        break;
      }
      if (nowMs() - committed > 10_000) throw new Error('B did not refuse a revoked token within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    samples.push(nowMs() - committed);
  }
  const histogramCount = await gauge(b, 'revocation_propagation_seconds_count');
  const withinOneSecond = await gauge(b, 'revocation_propagation_seconds_bucket{le="1"}');
  await Promise.all([a.stop(), b.stop()]);
  const summary = summarize(samples);
  const notes = `${summary.count} revocations; B's own histogram (trigger → applied): ${withinOneSecond} of ${histogramCount} within 1 s; polling every 2 ms adds up to ~2 ms plus a VerifyToken round trip`;
  return [
    limitRow({ scenario: 'sessions', measure: 'revocation propagation A → B, p50', service: { value: summary.p50, unit: 'ms' }, limit: 1_000, notes }),
    limitRow({ scenario: 'sessions', measure: 'revocation propagation A → B, p99', service: { value: summary.p99, unit: 'ms' }, limit: 1_000 }),
  ];
}

/**
 * Sessions (issue 13): RefreshToken vs a bare transaction; VerifyToken with 100,000 revoked
 * sessions in memory vs none, and what they cost in memory; revocation propagation between
 * two replicas.
 */
export async function sessions(ctx: BenchContext): Promise<ResultRow[]> {
  const { warmupMs, durationMs, refreshSeconds, revoked, propagations } = pick(ctx, SETTINGS);
  const rows: ResultRow[] = [];

  const refreshDb = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  // As many pooled connections as the bare script has (16 refreshers): the same database work.
  const service = await startScenarioService(ctx, refreshDb, { DB_POOL_MAX: String(REFRESHERS) });
  rows.push(await refreshThroughput(ctx, refreshDb, service, refreshSeconds));
  await service.stop();

  const { none, many } = await verifyWithRevocations(ctx, revoked, warmupMs, durationMs);
  rows.push(
    ratioRow({
      scenario: 'sessions',
      measure: `VerifyToken (cached, token with sid) with ${many.entries.toLocaleString('en')} revoked sessions in memory vs none`,
      service: { value: many.throughput, unit: '/s' },
      baseline: { value: none.throughput, unit: '/s', label: 'no revoked session' },
      minRatio: 0.95,
      notes: `${ROUNDS} alternating rounds; per CPU-second of the service (what a loaded machine distorts least): ${Math.round(many.perCpuSecond)} vs ${Math.round(none.perCpuSecond)} (${((many.perCpuSecond / none.perCpuSecond) * 100).toFixed(1)} %); worst round p99 ${many.p99.toFixed(1)} ms vs ${none.p99.toFixed(1)} ms`,
    }),
  );
  const bytes = listBytes(revoked);
  rows.push({
    scenario: 'sessions',
    measure: `memory of ${revoked.toLocaleString('en')} revoked sessions in the revocation list`,
    service: { value: toMB(bytes), unit: 'MB', label: `${Math.round(bytes / revoked)} B each` },
    target: 'info',
    notes: `measured in the bench process with forced GCs; the service's heap after start: ${toMB(many.heap).toFixed(1)} MB with them, ${toMB(none.heap).toFixed(1)} MB without (no forced GC)`,
  });

  rows.push(...(await propagation(ctx, await createDatabase(ctx.adminDatabaseUrl, ctx.scope), propagations)));
  return rows;
}
