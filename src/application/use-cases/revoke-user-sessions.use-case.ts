import { allSessionsRevoked } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import { requireValid } from '../field-validation.js';
import { lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseUserId } from '../user-id-input.js';

/**
 * Revokes every live session of a user (reason ADMIN) and sets tokens_valid_after, with one
 * SessionRevoked in the same transaction; answers how many sessions were live. With none,
 * nothing is written and no event goes out.
 */
export class RevokeUserSessions {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly clock: Clock }) {}

  async execute(command: { readonly userId: string; readonly signal?: AbortSignal }): Promise<number> {
    const input = requireValid({ user_id: parseUserId(command.userId) });
    return this.deps.uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, input.user_id);
      const now = this.deps.clock.now();
      const revoked = await scope.sessions.revokeAllOfUser(user.id, SessionRevokedReason.Admin, now);
      if (revoked === 0) return 0;
      await scope.users.update(user.cutOffTokens(now), user.updatedAt);
      await scope.outbox.add(allSessionsRevoked(user.id, SessionRevokedReason.Admin, now));
      return revoked;
    }, command.signal);
  }
}
