import { allSessionsRevoked } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import { requireValid } from '../field-validation.js';
import { lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseUserId } from '../user-id-input.js';

/**
 * Erases a user in one transaction: email, names and password hash set to NULL in the row
 * (the id stays as a tombstone, so it is never handed out again and events about it still
 * make sense), status deleted, tokens_valid_after set, every session revoked and its client
 * address blanked, SessionRevoked and UserDeleted (no personal data) written. The email is
 * free to register again at once. A second delete is NOT_FOUND, like GetUser.
 */
export class DeleteUser {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly clock: Clock }) {}

  async execute(command: { readonly userId: string; readonly signal?: AbortSignal }): Promise<void> {
    const input = requireValid({ user_id: parseUserId(command.userId) });
    await this.deps.uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, input.user_id);
      const now = this.deps.clock.now();
      const { user: erased, event } = user.erase(now);
      await scope.users.update(erased, user.updatedAt);
      await scope.sessions.revokeAllOfUser(user.id, SessionRevokedReason.UserDeleted, now);
      await scope.sessions.eraseClientAddresses(user.id);
      await scope.outbox.add(allSessionsRevoked(user.id, SessionRevokedReason.UserDeleted, now));
      await scope.outbox.add(event);
    }, command.signal);
  }
}
