import bcrypt from 'bcrypt';
import { SEED_PASSWORD, seedUsers } from './user-seeder.js';
import type { BenchDatabase } from './database.js';

export interface SeededUsers {
  readonly count: number;
  readonly password: string;
  /** Seeded emails are `${emailPrefix}<n>@seed.example`, n in 1..count. */
  readonly emailPrefix: string;
}

const hashes = new Map<number, Promise<string>>();
const SEED_BATCH = 10_000;

/**
 * Inserts `count` users with the service's own seeder (the one behind `identity dev seed`):
 * one precomputed hash at the service's cost, so logins as seeded users cost exactly one
 * compare and never trigger a rehash. ANALYZE afterwards, as autovacuum would in production.
 */
export async function seedDatabase(db: BenchDatabase, count: number, cost: number): Promise<SeededUsers> {
  if (!hashes.has(cost)) hashes.set(cost, bcrypt.hash(SEED_PASSWORD, cost));
  const hash = await hashes.get(cost)!;
  const { emailPrefix } = await seedUsers(db.knex, count, hash, SEED_BATCH);
  await db.knex.raw('analyze users');
  return { count, password: SEED_PASSWORD, emailPrefix };
}
