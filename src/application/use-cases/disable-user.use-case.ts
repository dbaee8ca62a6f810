import { allSessionsRevoked } from '../../domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import type { User } from '../../domain/identity/user.entity.js';
import { err, ok, type Result } from '../../domain/shared/result.js';
import { codePointLength, hasControlCharacter, isValidUnicode } from '../../domain/shared/text.js';
import { requireValid } from '../field-validation.js';
import { lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseUserId } from '../user-id-input.js';

const MAX_REASON_CODE_POINTS = 500;

export interface DisableUserCommand {
  readonly userId: string;
  readonly reason: string;
  readonly signal?: AbortSignal;
}

/** The operator's reason, kept in users.disabled_reason and sent in UserDisabled: trimmed, NFC, up to 500 characters. */
function parseReason(raw: string): Result<string, string> {
  if (!isValidUnicode(raw)) return err('must be valid UTF-8');
  const text = raw.trim().normalize('NFC');
  if (hasControlCharacter(text)) return err('must not contain control characters');
  if (codePointLength(text) > MAX_REASON_CODE_POINTS) return err(`must be at most ${MAX_REASON_CODE_POINTS} characters`);
  return ok(text);
}

/**
 * Disables a user in one transaction: status, reason and tokens_valid_after, every session
 * revoked, UserDisabled and SessionRevoked written. Idempotent: an already disabled user is
 * answered as it is, with no write and no second event (its first reason is kept).
 */
export class DisableUser {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly clock: Clock }) {}

  async execute(command: DisableUserCommand): Promise<User> {
    const input = requireValid({ user_id: parseUserId(command.userId), reason: parseReason(command.reason) });
    return this.deps.uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, input.user_id);
      const now = this.deps.clock.now();
      const change = user.disable(input.reason, now);
      if (change === undefined) return user;
      await scope.users.update(change.user, user.updatedAt);
      await scope.sessions.revokeAllOfUser(user.id, SessionRevokedReason.UserDisabled, now);
      await scope.outbox.add(change.event);
      await scope.outbox.add(allSessionsRevoked(user.id, SessionRevokedReason.UserDisabled, now));
      return change.user;
    }, command.signal);
  }
}
