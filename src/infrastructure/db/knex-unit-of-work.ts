import type { Knex } from 'knex';
import type { Outbox } from '../../application/ports/outbox.port.js';
import type { TransactionScope, UnitOfWork } from '../../application/ports/unit-of-work.port.js';
import { OutboxWriter } from '../outbox/outbox.writer.js';
import { withDbErrors } from './db-errors.js';
import { KnexSessionRepository } from './session.repository.js';
import { KnexUserRepository } from './user.repository.js';

export interface KnexUnitOfWorkOptions {
  /** ce-source of the events written. */
  readonly eventSource: string;
  /** Called after a commit that wrote outbox rows: the local relay need not wait for its poll. */
  readonly onEventsCommitted?: () => void;
  /** Replaces the outbox inside the transaction (tests use it to make the insert fail). */
  readonly outboxFor?: (trx: Knex.Transaction, writer: OutboxWriter) => Outbox;
}

/** One Knex transaction per unit of work; the repositories in its scope all use it. */
export class KnexUnitOfWork implements UnitOfWork {
  constructor(
    private readonly knex: Knex,
    private readonly options: KnexUnitOfWorkOptions,
  ) {}

  async run<T>(work: (scope: TransactionScope) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let writer: OutboxWriter | undefined;
    const result = await withDbErrors(() =>
      this.knex.transaction(async (trx) => {
        writer = new OutboxWriter(trx, this.options.eventSource);
        const outbox = this.options.outboxFor?.(trx, writer) ?? writer;
        const result = await work({ users: new KnexUserRepository(trx), sessions: new KnexSessionRepository(trx), outbox });
        signal?.throwIfAborted();
        return result;
      }),
    );
    if (writer !== undefined && writer.count > 0) this.options.onEventsCommitted?.();
    return result;
  }
}
