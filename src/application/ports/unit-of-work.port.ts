import type { Outbox } from './outbox.port.js';
import type { SessionRepository } from './session.repository.port.js';
import type { UserRepository } from './user.repository.port.js';

/** The repositories of one transaction: everything written through them commits together or not at all. */
export interface TransactionScope {
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly outbox: Outbox;
}

export interface UnitOfWork {
  /**
   * Runs `work` in one database transaction; commits when it resolves, rolls back when it
   * throws. A signal aborted before the commit (the caller's deadline) rolls back too.
   */
  run<T>(work: (scope: TransactionScope) => Promise<T>, signal?: AbortSignal): Promise<T>;
}
