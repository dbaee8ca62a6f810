import type { TransactionScope, UnitOfWork } from '../../src/application/ports/unit-of-work.port.js';
import { FakeOutbox } from './outbox.fake.js';
import type { FakeSessionRepository } from './session-repository.fake.js';
import type { FakeUserRepository } from './user-repository.fake.js';

/**
 * A transaction over the fake repository and outbox: the work sees its own writes on a
 * snapshot; when it resolves (and the signal has not aborted) the writes are replayed onto
 * the shared stores all or none, as a commit; when it throws they are dropped, as a rollback.
 * Replaying at commit keeps the unique email key deciding between two racing transactions.
 */
export class FakeUnitOfWork implements UnitOfWork {
  commits = 0;
  rollbacks = 0;

  constructor(
    private readonly users: FakeUserRepository,
    private readonly outbox: FakeOutbox,
    private readonly sessions: FakeSessionRepository,
  ) {}

  async run<T>(work: (scope: TransactionScope) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const scope = { users: this.users.snapshot(), outbox: new FakeOutbox(), sessions: this.sessions.snapshot() };
    try {
      const result = await work(scope);
      // As KnexUnitOfWork: a deadline that passed during the work rolls it back.
      signal?.throwIfAborted();
      this.users.applyAll(scope.users.journal);
      this.sessions.applyAll(scope.sessions.journal);
      this.outbox.events.push(...scope.outbox.events);
      this.commits++;
      return result;
    } catch (error) {
      this.rollbacks++;
      throw error;
    }
  }
}
