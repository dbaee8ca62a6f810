import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import type { Job, JobResult, RequestSpec } from '../lib/loadgen.js';
import { ratioRow, type ResultRow } from '../lib/report.js';
import { seedDatabase } from '../lib/seed.js';
import { startScenarioService, type ServiceHandle } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import { REGISTER_PASSWORD } from './register.js';
import { VERIFY_STREAMS } from './verify-uncached.js';

const SETTINGS = {
  full: { users: 10_000, warmupMs: 2_000, durationMs: 12_000 },
  quick: { users: 2_000, warmupMs: 1_000, durationMs: 5_000 },
};
/** Issue 17: on 2 cores nothing may collapse when a second replica shares the machine and the database. */
const MIN_RATIO = 0.8;

/**
 * RegisterUser, Authenticate and VerifyToken with one replica, then with two replicas of the
 * service on one PostgreSQL (sharing its stream, as a deployment would), under the same total
 * number of calls in flight, split evenly. Throughput is the sum over the replicas; p99 the
 * worse replica's. On a machine of two cores the second replica adds no CPU: the point is that
 * sharing the database and the outbox (SKIP LOCKED claims, leases) costs little.
 */
export async function replicas(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const first = await startScenarioService(ctx, db);
  const tokens = await mintTokens(first, db, VERIFY_STREAMS);
  // Enough logins in flight to keep every replica's hashing threads busy.
  const hashing = 2 * (ctx.hashWorkers + 1);
  const rpcs: readonly { readonly rpc: string; readonly concurrency: number; readonly request: (replica: number) => RequestSpec }[] = [
    { rpc: 'RegisterUser', concurrency: hashing, request: (replica) => ({ rpc: 'RegisterUser', emailPrefix: `replicas-${replica}-${Date.now()}-`, password: REGISTER_PASSWORD }) },
    {
      rpc: 'Authenticate',
      concurrency: hashing,
      request: () => ({ rpc: 'Authenticate', users: { emailPrefix: users.emailPrefix, count: users.count, order: 'random' }, password: users.password }),
    },
    { rpc: 'VerifyToken', concurrency: VERIFY_STREAMS, request: () => ({ rpc: 'VerifyToken', tokens }) },
  ];
  const measure = async (services: readonly ServiceHandle[]) => {
    const figures = new Map<string, { throughput: number; p99: number; results: readonly JobResult[] }>();
    for (const { rpc, concurrency, request } of rpcs) {
      ctx.log(`${rpc}: ${services.length} replica(s), ${concurrency} in flight in all, ${settings.durationMs / 1000} s`);
      const jobs: Job[] = services.map((service, i) => ({
        label: `${rpc} #${i + 1}`,
        target: service.target,
        request: request(i),
        load: { kind: 'closed', concurrency: Math.max(1, Math.round(concurrency / services.length)) },
      }));
      const { jobs: results } = await ctx.loadgen.run({ jobs, warmupMs: settings.warmupMs, durationMs: settings.durationMs });
      figures.set(rpc, {
        throughput: results.reduce((sum, job) => sum + job.throughput, 0),
        p99: Math.max(...results.map((job) => job.latency.p99)),
        results,
      });
    }
    return figures;
  };
  const one = await measure([first]);
  const second = await startScenarioService(ctx, db, { NATS_STREAM: first.stream, NATS_SUBJECT_PREFIX: first.subjectPrefix });
  const two = await measure([first, second]);
  await second.stop();
  await first.stop();

  return rpcs.map(({ rpc }) => {
    const [alone, shared] = [one.get(rpc)!, two.get(rpc)!];
    const errors = [...alone.results, ...shared.results].reduce((sum, job) => sum + Object.values(job.errors).reduce((a, b) => a + b, 0), 0);
    const row = ratioRow({
      scenario: 'replicas',
      measure: `${rpc} throughput, two replicas vs one on one PostgreSQL`,
      service: { value: shared.throughput, unit: '/s', label: 'two replicas' },
      baseline: { value: alone.throughput, unit: '/s', label: 'one replica' },
      minRatio: MIN_RATIO,
      notes: `p99 ${shared.p99.toFixed(1)} ms with two vs ${alone.p99.toFixed(1)} ms with one; per replica ${shared.results.map((job) => job.throughput.toFixed(1)).join(' + ')}/s; ${errors} errors`,
    });
    return { ...row, pass: row.pass && errors === 0 };
  });
}
