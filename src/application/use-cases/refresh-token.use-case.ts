import { InvalidRefreshTokenError } from '../../domain/identity/identity.errors.js';
import type { Session, SessionPolicy } from '../../domain/identity/session.entity.js';
import type { RefreshToken } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { RefreshOutcome, SessionTelemetry } from '../ports/session-telemetry.port.js';
import type { IssuedToken, TokenProvider } from '../ports/token-provider.port.js';
import type { TransactionScope, UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseRefreshToken } from '../refresh-token-input.js';

export interface RefreshTokenCommand {
  readonly refreshToken: string;
  readonly clientAddress: string;
  readonly signal?: AbortSignal;
}

export interface RefreshTokenDeps {
  readonly uow: UnitOfWork;
  readonly tokens: TokenProvider;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly telemetry: SessionTelemetry;
  readonly sessionPolicy: SessionPolicy;
}

export interface Refreshed {
  readonly session: Session;
  readonly refreshToken: RefreshToken;
  readonly token: IssuedToken;
}

type Attempt = { readonly outcome: 'rotated' | 'grace'; readonly refreshed: Refreshed } | { readonly outcome: Exclude<RefreshOutcome, 'rotated' | 'grace'>; readonly userId?: string };

/**
 * Single-use rotation in one locked step: the session row is locked, the presented token
 * consumed, its successor recorded and the new access token signed, all in one transaction.
 * A consumed token presented again (a stolen copy, a replay, or the loser of two concurrent
 * refreshes) revokes the session and writes SessionRevoked in the same transaction.
 */
export class RefreshTokens {
  constructor(private readonly deps: RefreshTokenDeps) {}

  async execute(command: RefreshTokenCommand): Promise<Refreshed> {
    const { uow, telemetry, audit } = this.deps;
    const presented = requireValid({ refresh_token: parseRefreshToken(command.refreshToken) }).refresh_token;
    const attempt: Attempt =
      presented === undefined
        ? { outcome: 'unknown' }
        : await uow.run(async (scope) => {
            const attempt = await this.consume(scope, presented);
            // The caller's deadline rolls a rotation back (the presented token stays good), but
            // never a detected reuse: a short deadline must not undo the revocation of a stolen family.
            if (attempt.outcome !== 'reused') command.signal?.throwIfAborted();
            return attempt;
          });
    telemetry.refreshed(attempt.outcome);
    if (attempt.outcome === 'rotated' || attempt.outcome === 'grace') return attempt.refreshed;
    if (attempt.outcome === 'reused') {
      audit.record({ action: 'refresh', outcome: 'reuse_detected', clientAddress: command.clientAddress, ...(attempt.userId !== undefined && { userId: attempt.userId }) });
    }
    throw new InvalidRefreshTokenError();
  }

  /** Inside the transaction: lock the session, decide, write the rotation or the revocation. */
  private async consume(scope: TransactionScope, presented: RefreshToken): Promise<Attempt> {
    const { clock, tokens, sessionPolicy } = this.deps;
    const digest = presented.digest();
    const found = await scope.sessions.findByRefreshTokenForUpdate(digest);
    if (found === undefined) return { outcome: 'unknown' };
    const { session, userActive } = found;
    const result = session.refresh(digest, clock.now(), sessionPolicy);
    if (result.outcome === 'reused') {
      await scope.sessions.saveRevocation(result.session);
      await scope.outbox.add(result.event);
      return { outcome: 'reused', userId: session.userId.value };
    }
    if (result.outcome !== 'rotated' && result.outcome !== 'grace') return { outcome: result.outcome };
    // A disable or delete revokes the user's sessions, but waits for this row lock to do so:
    // the user's state is checked here too.
    if (!userActive) return { outcome: 'user_inactive' };
    await scope.sessions.saveRotation(result.session);
    const token = await tokens.issue(session.userId, result.session.id);
    return { outcome: result.outcome, refreshed: { session: result.session, refreshToken: result.refreshToken, token } };
  }
}
