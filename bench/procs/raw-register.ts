/**
 * Baseline for RegisterUser: bcrypt hash at the service's cost on N threads, and for each
 * hash the same two-row transaction the service commits (users + outbox), with bare pg.
 * Hashing and the database overlap, as they do in the service under load.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { serveParent } from '../lib/child-server.js';
import { nowMs } from '../lib/clock.js';
import { fakeUserRegistered } from '../lib/events.js';
import { countBetween } from '../lib/stats.js';
import { encodeEvent } from '../../src/infrastructure/outbox/event-codec.js';
import { runBcryptThreads } from './bcrypt-threads.js';

export interface RawRegisterParams {
  readonly databaseUrl: string;
  readonly cost: number;
  readonly threads: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The service's ce-source, so outbox rows are the same size. */
  readonly eventSource: string;
}

/** The service's default DB_POOL_MAX. */
const POOL_SIZE = 10;

async function register(pool: pg.Pool, n: number, passwordHash: string, source: string): Promise<void> {
  const event = fakeUserRegistered(n);
  const encoded = encodeEvent(event, source, new Date());
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(
      `insert into users (id, email, email_key, password_hash, first_name, last_name, status, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, 'active', now(), now())`,
      [event.userId, event.email, event.email.toLowerCase(), passwordHash, event.firstName, event.lastName],
    );
    await client.query('insert into outbox (event_id, event_type, aggregate_id, payload, headers) values ($1, $2, $3, $4, $5)', [
      encoded.eventId,
      encoded.eventType,
      encoded.aggregateId,
      Buffer.from(encoded.payload),
      encoded.headers,
    ]);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

serveParent({
  async run({ databaseUrl, cost, threads, warmupMs, durationMs, eventSource }: RawRegisterParams) {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: POOL_SIZE });
    try {
      await pool.query('select 1');
      const from = nowMs() + warmupMs;
      const committed: number[] = [];
      const transactions: Promise<void>[] = [];
      let failure: Error | undefined;
      const password = `bench-${randomUUID()}`;
      await runBcryptThreads(threads, { op: 'hash', password, cost, hash: '', until: from + durationMs }, (_at, hash) => {
        transactions.push(
          register(pool, transactions.length, hash!, eventSource).then(
            () => void committed.push(nowMs()),
            (error: unknown) => void (failure ??= error instanceof Error ? error : new Error(String(error))),
          ),
        );
      });
      await Promise.all(transactions);
      if (failure !== undefined) throw failure;
      const count = countBetween(committed, from, from + durationMs);
      return { count, rate: count / (durationMs / 1000) };
    } finally {
      await pool.end();
    }
  },
});
