import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseRefreshToken } from '../refresh-token-input.js';

export interface LogoutCommand {
  readonly refreshToken: string;
  readonly clientAddress: string;
  readonly signal?: AbortSignal;
}

export interface LogoutDeps {
  readonly uow: UnitOfWork;
  readonly clock: Clock;
  readonly audit: AuditLog;
}

/**
 * Revokes the session of the refresh token given, with its SessionRevoked event. Idempotent:
 * an unknown token, or one of a session already revoked, is fine and changes nothing.
 */
export class Logout {
  constructor(private readonly deps: LogoutDeps) {}

  async execute(command: LogoutCommand): Promise<void> {
    const { uow, clock, audit } = this.deps;
    const presented = requireValid({ refresh_token: parseRefreshToken(command.refreshToken) }).refresh_token;
    if (presented === undefined) return;
    const userId = await uow.run(async (scope) => {
      const session = (await scope.sessions.findByRefreshTokenForUpdate(presented.digest()))?.session;
      if (session === undefined || session.revokedAt !== undefined) return undefined;
      const { session: revoked, event } = session.revoke(SessionRevokedReason.Logout, clock.now());
      await scope.sessions.saveRevocation(revoked);
      await scope.outbox.add(event);
      return session.userId.value;
    }, command.signal);
    if (userId !== undefined) audit.record({ action: 'logout', outcome: 'success', clientAddress: command.clientAddress, userId });
  }
}
