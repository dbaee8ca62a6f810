import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase, type BenchDatabase } from '../lib/database.js';
import type { RequestSpec, StepResult } from '../lib/loadgen.js';
import { errorText } from '../lib/notes.js';
import type { ResultRow } from '../lib/report.js';
import { seedDatabase, type SeededUsers } from '../lib/seed.js';
import { startScenarioService, type ServiceHandle } from '../lib/service.js';
import { mintTokens } from '../lib/tokens.js';
import { REGISTER_PASSWORD } from './register.js';

const SETTINGS = {
  // 100 rounds: a p99 from fewer calls is the slowest call or two, which is noise, not a trend.
  full: { small: 10_000, large: 1_000_000, verifyRounds: 2_000, rounds: 100 },
  quick: { small: 10_000, large: 100_000, verifyRounds: 200, rounds: 10 },
};
const MAX_GROWTH = 1.2;

interface Side {
  readonly label: string;
  readonly db: BenchDatabase;
  readonly users: SeededUsers;
  readonly service: ServiceHandle;
  readonly tokens: readonly string[];
}

/**
 * Latency with 10,000 and with 1,000,000 users in the table. Both databases and services run
 * side by side and the calls alternate between them, one at a time, so that whatever else the
 * machine does hits both sizes alike. Index lookups keep p99 flat; a scan would not.
 */
export async function scale(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const sides: Side[] = [];
  for (const count of [settings.small, settings.large]) {
    const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
    const started = Date.now();
    const users = await seedDatabase(db, count, ctx.bcryptCost);
    ctx.log(`seeded ${count.toLocaleString('en-US')} users in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const service = await startScenarioService(ctx, db);
    sides.push({ label: `${count.toLocaleString('en-US')} users`, db, users, service, tokens: await mintTokens(service, db, settings.verifyRounds + 20) });
  }
  const [small, large] = sides as [Side, Side];

  const alternate = async (rpc: string, rounds: number, request: (side: Side) => RequestSpec) => {
    ctx.log(`${rpc}: ${rounds} rounds alternating between ${small.label} and ${large.label}`);
    const result = await ctx.loadgen.sequence({
      rounds,
      // bcrypt calls need no warming; VerifyToken's first calls pay for JIT and connection set-up.
      warmupRounds: rpc === 'VerifyToken' ? 20 : 2,
      rotate: true,
      steps: sides.map((side) => ({ label: side.label, target: side.service.target, request: request(side) })),
    });
    return result.steps as [StepResult, StepResult];
  };
  const measured = {
    VerifyToken: await alternate('VerifyToken', settings.verifyRounds, (side) => ({ rpc: 'VerifyToken', tokens: side.tokens })),
    Authenticate: await alternate('Authenticate', settings.rounds, (side) => ({
      rpc: 'Authenticate',
      users: { emailPrefix: side.users.emailPrefix, count: side.users.count, order: 'random' },
      password: side.users.password,
    })),
    RegisterUser: await alternate('RegisterUser', settings.rounds, () => ({ rpc: 'RegisterUser', emailPrefix: 'scale-', password: REGISTER_PASSWORD })),
  };
  const plan = await emailLookupPlan(large.db, large.users);
  for (const side of sides) await side.service.stop();

  const rows: ResultRow[] = Object.entries(measured).map(([rpc, [atSmall, atLarge]]) => {
    const growth = atLarge.latency.p99 / atSmall.latency.p99;
    return {
      scenario: 'scale',
      measure: `${rpc} p99, ${large.label} vs ${small.label}`,
      service: { value: atLarge.latency.p99, unit: 'ms', label: large.label },
      baseline: { value: atSmall.latency.p99, unit: 'ms', label: small.label },
      ratio: growth,
      target: `grows < ${Math.round((MAX_GROWTH - 1) * 100)} %`,
      pass: growth < MAX_GROWTH && Object.keys({ ...atSmall.errors, ...atLarge.errors }).length === 0,
      notes: `p50 ${atLarge.latency.p50.toFixed(2)} vs ${atSmall.latency.p50.toFixed(2)} ms; ${atLarge.ok}+${atSmall.ok} calls; ${errorText({ errors: { ...atSmall.errors, ...atLarge.errors } })}`,
    };
  });
  rows.push({
    scenario: 'scale',
    measure: `email lookup uses the unique index (${large.label})`,
    service: { value: plan.usesIndex ? 1 : 0, unit: 'n' },
    target: '= 1 (index scan)',
    pass: plan.usesIndex,
    notes: plan.text,
  });
  return rows;
}

/** EXPLAIN of the repository's lookup (where email_key = ?), on the large table. */
async function emailLookupPlan(db: BenchDatabase, users: SeededUsers): Promise<{ usesIndex: boolean; text: string }> {
  const result = await db.knex.raw<{ rows: { 'QUERY PLAN': string }[] }>('explain select * from users where email_key = ? limit 1', [`${users.emailPrefix}42@seed.example`]);
  const text = result.rows.map((row) => row['QUERY PLAN'].trim()).join(' / ');
  return { usesIndex: /Index (Only )?Scan using users_email_key_unique/.test(text), text };
}
