import type { User } from '../../domain/identity/user.entity.js';
import { requireValid } from '../field-validation.js';
import { lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseUserId } from '../user-id-input.js';

/**
 * Enables a disabled user and writes UserEnabled in the same transaction. Idempotent: an
 * active user is answered as it is, with no write and no event. Tokens issued before the
 * disable stay refused (its tokens_valid_after), and its sessions stay revoked: the user logs in again.
 */
export class EnableUser {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly clock: Clock }) {}

  async execute(command: { readonly userId: string; readonly signal?: AbortSignal }): Promise<User> {
    const input = requireValid({ user_id: parseUserId(command.userId) });
    return this.deps.uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, input.user_id);
      const change = user.enable(this.deps.clock.now());
      if (change === undefined) return user;
      await scope.users.update(change.user, user.updatedAt);
      await scope.outbox.add(change.event);
      return change.user;
    }, command.signal);
  }
}
