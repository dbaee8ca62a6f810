/**
 * Baseline for Authenticate: bcrypt compare at the service's cost on N threads, nothing else.
 * The rate the service could reach if a login cost nothing but its one compare.
 */
import bcrypt from 'bcrypt';
import { serveParent } from '../lib/child-server.js';
import { nowMs } from '../lib/clock.js';
import { countBetween } from '../lib/stats.js';
import { runBcryptThreads } from './bcrypt-threads.js';

export interface RawCompareParams {
  readonly cost: number;
  readonly threads: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

const PASSWORD = 'seeded-user-password';

/** One hash per cost, made once: a run's window then starts when it is asked to. */
const hashes = new Map<number, string>();
const hashAt = (cost: number) => hashes.get(cost) ?? hashes.set(cost, bcrypt.hashSync(PASSWORD, cost)).get(cost)!;

serveParent({
  /** Makes the hash a run at `cost` compares against, so that a later run starts at once (rounds beside another load). */
  prepare({ cost }: { cost: number }) {
    hashAt(cost);
    return Promise.resolve();
  },
  async run({ cost, threads, warmupMs, durationMs }: RawCompareParams) {
    const hash = hashAt(cost);
    const from = nowMs() + warmupMs;
    const done: number[] = [];
    await runBcryptThreads(threads, { op: 'compare', password: PASSWORD, cost, hash, until: from + durationMs }, (at) => done.push(at));
    const count = countBetween(done, from, from + durationMs);
    return { count, rate: count / (durationMs / 1000) };
  },
});
