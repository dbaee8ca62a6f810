/**
 * Writes UserRegistered events through the service's own unit of work and outbox writer
 * (one event per transaction, like a registration) at a steady rate, and reports when each
 * transaction committed. Registrations themselves are capped by bcrypt far below 200/s.
 */
import knexFactory from 'knex';
import { KnexUnitOfWork } from '../../src/infrastructure/db/knex-unit-of-work.js';
import { serveParent } from '../lib/child-server.js';
import { nowMs } from '../lib/clock.js';
import { fakeUserRegistered } from '../lib/events.js';
import { paced } from '../lib/pacer.js';

export interface OutboxWriterParams {
  readonly databaseUrl: string;
  readonly ratePerSecond: number;
  readonly durationMs: number;
  readonly eventSource: string;
}

export interface OutboxWriterResult {
  /** [event id, commit time in epoch ms] for every committed event. */
  readonly commits: readonly (readonly [string, number])[];
  readonly failed: number;
  readonly firstError?: string;
}

serveParent({
  async run({ databaseUrl, ratePerSecond, durationMs, eventSource }: OutboxWriterParams): Promise<OutboxWriterResult> {
    // The service's pool settings (DB_POOL_MAX 10).
    const knex = knexFactory({ client: 'pg', connection: databaseUrl, pool: { min: 0, max: 10 } });
    try {
      await knex.raw('select 1');
      const uow = new KnexUnitOfWork(knex, { eventSource });
      const commits: [string, number][] = [];
      let failed = 0;
      let firstError: string | undefined;
      let n = 0;
      await paced(ratePerSecond, nowMs() + durationMs, async () => {
        const event = fakeUserRegistered(n++);
        try {
          await uow.run((scope) => scope.outbox.add(event));
          commits.push([event.eventId, nowMs()]);
        } catch (error) {
          failed++;
          firstError ??= String(error);
        }
      });
      return { commits, failed, ...(firstError !== undefined && { firstError }) };
    } finally {
      await knex.destroy();
    }
  },
});
