import type { Logger } from 'pino';
import type { Clock } from '../../application/ports/clock.port.js';
import type { RevocationList } from '../../application/ports/revocation-list.port.js';
import type { VerifiedToken } from '../../application/ports/token-provider.port.js';
import { InvalidTokenError, TokenFailureReason } from '../../domain/identity/identity.errors.js';
import type { Metrics } from '../observability/metrics.js';

/** A user's state as far as their tokens go, as the database holds it. */
export interface UserRevocationState {
  readonly userId: string;
  readonly status: string;
  readonly tokensValidAfterMs: number | undefined;
  readonly updatedAtMs: number;
}

interface UserEntry {
  /** Tokens issued (iat, whole seconds) before this are refused; Infinity: all of them. */
  readonly notBeforeMs: number;
  /** When the last token this entry can refuse has expired; the entry goes then. */
  readonly untilMs: number;
}

export interface InMemoryRevocationListOptions {
  readonly clock: Clock;
  /** Longest life of an access token: TOKEN_TTL_SECONDS + TOKEN_CLOCK_SKEW_SECONDS. */
  readonly horizonSeconds: number;
  readonly metrics: Pick<Metrics, 'tokenVerifyFailures'>;
  readonly logger: Logger;
}

/**
 * The revocations VerifyToken must honour, in memory: revoked sessions by id, and users whose
 * tokens are cut off (disabled or deleted: all of them; a password change: those issued
 * before tokens_valid_after). Memory is bounded by time: an entry lives only until the last
 * access token it could refuse has expired (revocation + TTL + skew), then is pruned.
 */
export class InMemoryRevocationList implements RevocationList {
  /**
   * Revoked session id -> when its entry expires, in whole seconds: a small integer (V8 keeps
   * it unboxed in the map, until 2038), where milliseconds would be a boxed number each.
   */
  private readonly sessions = new Map<string, number>();
  private users = new Map<string, UserEntry>();
  private readonly horizonMs: number;

  constructor(private readonly options: InMemoryRevocationListOptions) {
    this.horizonMs = options.horizonSeconds * 1000;
  }

  check(token: VerifiedToken): void {
    const now = this.options.clock.now().getTime();
    const sessionUntil = token.sessionId === undefined ? undefined : this.sessions.get(token.sessionId);
    const user = this.users.get(token.userId);
    const revoked = (sessionUntil !== undefined && sessionUntil * 1000 > now) || (user !== undefined && user.untilMs > now && token.issuedAt.getTime() < user.notBeforeMs);
    if (!revoked) return;
    this.options.metrics.tokenVerifyFailures.inc({ reason: TokenFailureReason.Revoked });
    this.options.logger.debug({ reason: TokenFailureReason.Revoked }, 'token refused');
    throw new InvalidTokenError(TokenFailureReason.Revoked);
  }

  /** A session revoked at `revokedAtMs`: its tokens are refused until they have all expired. */
  revokeSession(sessionId: string, revokedAtMs: number): void {
    // Rounded up: the entry may outlive the last token by under a second, never the reverse.
    const untilSeconds = Math.ceil((revokedAtMs + this.horizonMs) / 1000);
    if (untilSeconds * 1000 > this.options.clock.now().getTime() && (this.sessions.get(sessionId) ?? 0) < untilSeconds) this.sessions.set(sessionId, untilSeconds);
  }

  /** A user's status or tokens_valid_after as it now is. */
  updateUser(state: UserRevocationState): void {
    const entry = this.entryFor(state);
    if (entry === undefined) this.users.delete(state.userId);
    else this.users.set(state.userId, entry);
  }

  /** Replaces every user entry with the states read by a resync (sessions are only ever added). */
  replaceUsers(states: Iterable<UserRevocationState>): void {
    const users = new Map<string, UserEntry>();
    for (const state of states) {
      const entry = this.entryFor(state);
      if (entry !== undefined) users.set(state.userId, entry);
    }
    this.users = users;
  }

  /** Forgets entries that can no longer refuse anything. */
  prune(): void {
    const now = this.options.clock.now().getTime();
    for (const [id, untilSeconds] of this.sessions) if (untilSeconds * 1000 <= now) this.sessions.delete(id);
    for (const [id, entry] of this.users) if (entry.untilMs <= now) this.users.delete(id);
  }

  get size(): { sessions: number; users: number } {
    return { sessions: this.sessions.size, users: this.users.size };
  }

  /** The oldest instant a revocation that still matters can have: now - (TTL + skew). */
  horizonStart(): Date {
    return new Date(this.options.clock.now().getTime() - this.horizonMs);
  }

  private entryFor(state: UserRevocationState): UserEntry | undefined {
    const now = this.options.clock.now().getTime();
    // Disabled or deleted: no token of the user is good. None is issued after the change (login
    // and refresh check the status), so the entry may go once those issued before have expired.
    if (state.status !== 'active') {
      const untilMs = state.updatedAtMs + this.horizonMs;
      return untilMs > now ? { notBeforeMs: Number.POSITIVE_INFINITY, untilMs } : undefined;
    }
    if (state.tokensValidAfterMs === undefined) return undefined;
    const untilMs = state.tokensValidAfterMs + this.horizonMs;
    // iat has whole seconds: a token issued in the same second as the cut-off, before it, is
    // caught by its revoked session instead (a password change revokes them all).
    const notBeforeMs = Math.floor(state.tokensValidAfterMs / 1000) * 1000;
    return untilMs > now ? { notBeforeMs, untilMs } : undefined;
  }
}
