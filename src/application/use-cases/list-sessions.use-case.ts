import type { Session } from '../../domain/identity/session.entity.js';
import { requireValid } from '../field-validation.js';
import { findManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import type { UserRepository } from '../ports/user.repository.port.js';
import { parseUserId } from '../user-id-input.js';

/** A user's live sessions (neither revoked nor expired), oldest first; NOT_FOUND for an unknown or erased user. */
export class ListSessions {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly users: UserRepository; readonly clock: Clock }) {}

  async execute(command: { readonly userId: string; readonly signal?: AbortSignal }): Promise<readonly Session[]> {
    const input = requireValid({ user_id: parseUserId(command.userId) });
    const user = await findManagedUser(this.deps.users, input.user_id);
    return this.deps.uow.run((scope) => scope.sessions.listLiveOfUser(user.id, this.deps.clock.now()), command.signal);
  }
}
