import { randomBytes } from 'node:crypto';
import { pick, type BenchContext } from '../lib/context.js';
import { createDatabase } from '../lib/database.js';
import type { StepResult, UserPool } from '../lib/loadgen.js';
import { errorText } from '../lib/notes.js';
import type { ResultRow } from '../lib/report.js';
import { seedDatabase } from '../lib/seed.js';
import { startScenarioService } from '../lib/service.js';

const SETTINGS = {
  full: { users: 1_000, rounds: 200, throttleRounds: 50 },
  quick: { users: 1_000, rounds: 15, throttleRounds: 10 },
};
const WRONG_PASSWORD = 'not-the-right-password';
const TOLERANCE = 0.05;

/**
 * Enumeration by timing: unknown email, wrong password and right password, one call at a
 * time, interleaved (each round in a rotated order), with throttling off so that only the
 * login path is timed. Then the cost of a throttled attempt next to the bcrypt attempt that
 * earned it (LOGIN_FREE_ATTEMPTS=1: an email's second attempt is refused without bcrypt).
 */
export async function timing(ctx: BenchContext): Promise<ResultRow[]> {
  const settings = pick(ctx, SETTINGS);
  const db = await createDatabase(ctx.adminDatabaseUrl, ctx.scope);
  const users = await seedDatabase(db, settings.users, ctx.bcryptCost);
  const known: UserPool = { emailPrefix: users.emailPrefix, count: users.count, order: 'random' };
  const unknown: UserPool = { emailPrefix: `nobody-${randomBytes(4).toString('hex')}-`, count: 1_000_000, order: 'random' };

  const open = await startScenarioService(ctx, db, { LOGIN_THROTTLE: 'off' });
  ctx.log(`service: ${settings.rounds} rounds of unknown email / wrong password / right password, one call at a time`);
  const spread = await ctx.loadgen.sequence({
    rounds: settings.rounds,
    warmupRounds: 3,
    rotate: true,
    steps: [
      { label: 'unknown email', target: open.target, request: { rpc: 'Authenticate', users: unknown, password: users.password }, expect: 'UNAUTHENTICATED' },
      { label: 'wrong password', target: open.target, request: { rpc: 'Authenticate', users: known, password: WRONG_PASSWORD }, expect: 'UNAUTHENTICATED' },
      { label: 'right password', target: open.target, request: { rpc: 'Authenticate', users: known, password: users.password } },
    ],
  });
  await open.stop();

  // Unknown emails, so that no seeded user is left throttled; a client limit out of the way.
  const throttled = await startScenarioService(ctx, db, { LOGIN_THROTTLE: 'on', LOGIN_FREE_ATTEMPTS: '1', LOGIN_CLIENT_FREE_ATTEMPTS: '100000' });
  const victims: UserPool = { emailPrefix: `throttled-${randomBytes(4).toString('hex')}-`, count: 1_000_000, order: 'index' };
  ctx.log(`service: ${settings.throttleRounds} rounds of a failed attempt then a throttled one, same email`);
  const throttle = await ctx.loadgen.sequence({
    rounds: settings.throttleRounds,
    warmupRounds: 2,
    rotate: false,
    steps: [
      { label: 'bcrypt attempt', target: throttled.target, request: { rpc: 'Authenticate', users: victims, password: WRONG_PASSWORD }, expect: 'UNAUTHENTICATED' },
      { label: 'throttled attempt', target: throttled.target, request: { rpc: 'Authenticate', users: victims, password: WRONG_PASSWORD }, expect: 'RESOURCE_EXHAUSTED' },
    ],
  });
  await throttled.stop();

  const [unknownEmail, wrongPassword, rightPassword] = spread.steps as [StepResult, StepResult, StepResult];
  const compare = (measure: string, a: StepResult, b: StepResult): ResultRow => {
    const ratio = a.latency.p50 / b.latency.p50;
    return {
      scenario: 'timing',
      measure,
      service: { value: a.latency.p50, unit: 'ms', label: `${a.label}, median` },
      baseline: { value: b.latency.p50, unit: 'ms', label: `${b.label}, median` },
      ratio,
      target: `within ±${TOLERANCE * 100} %`,
      pass: Math.abs(ratio - 1) <= TOLERANCE && a.ok === settings.rounds && b.ok === settings.rounds,
      notes: `${a.ok}/${b.ok} calls as expected; ${errorText({ errors: { ...a.errors, ...b.errors } })}`,
    };
  };
  const [attempt, refused] = throttle.steps as [StepResult, StepResult];
  return [
    compare('unknown email vs right password', unknownEmail, rightPassword),
    compare('wrong password vs right password', wrongPassword, rightPassword),
    compare('unknown email vs wrong password', unknownEmail, wrongPassword),
    {
      scenario: 'timing',
      measure: 'throttled attempt vs bcrypt attempt',
      service: { value: refused.latency.p50, unit: 'ms', label: 'throttled, median' },
      baseline: { value: attempt.latency.p50, unit: 'ms', label: 'bcrypt, median' },
      ratio: refused.latency.p50 / attempt.latency.p50,
      target: 'information',
      notes: `${refused.ok} RESOURCE_EXHAUSTED, ${attempt.ok} UNAUTHENTICATED; ${errorText({ errors: { ...attempt.errors, ...refused.errors } })}`,
    },
  ];
}
