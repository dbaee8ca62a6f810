import { inspect } from 'node:util';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InvalidTokenError } from '../../src/domain/identity/identity.errors.js';
import { Session } from '../../src/domain/identity/session.entity.js';
import { SessionRevokedReason } from '../../src/domain/identity/session-revoked-reason.js';
import { RefreshToken } from '../../src/domain/identity/value-objects/refresh-token.value-object.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { InMemoryRevocationList } from '../../src/infrastructure/revocation/in-memory-revocation-list.js';
import { RefreshTokens } from '../../src/application/use-cases/refresh-token.use-case.js';

const policy = { idleSeconds: 100, maxSeconds: 1_000, reuseGraceSeconds: 0 };
const T0 = new Date('2026-03-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

describe('RefreshToken', () => {
  it('is base64url of 32 random bytes and never prints', () => {
    const token = RefreshToken.generate();
    expect(token.reveal()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.reveal(), 'base64url')).toHaveLength(32);
    expect(String(token)).toBe('[REDACTED]');
    expect(JSON.stringify({ token })).not.toContain(token.reveal());
    expect(inspect(token)).not.toContain(token.reveal());
    expect(token.digest().bytes).toHaveLength(32);
    expect(token.digest().equals(RefreshToken.presented(token.reveal())!.digest())).toBe(true);
  });
});

describe('Session', () => {
  const open = () => Session.open(UserId.generate(), '203.0.113.9', T0, policy);

  it('rotates the current token, which then becomes the previous one', () => {
    const { session, refreshToken } = open();
    const result = session.refresh(refreshToken.digest(), at(50), policy);
    expect(result.outcome).toBe('rotated');
    if (result.outcome !== 'rotated') return;
    expect(result.session.previousRefreshTokenHash?.equals(refreshToken.digest())).toBe(true);
    expect(result.session.refreshTokenHash.equals(result.refreshToken.digest())).toBe(true);
    expect(result.session.idleExpiresAt).toEqual(at(150));
    expect(result.session.expiresAt).toEqual(at(1_000));
  });

  it('treats a consumed token as reuse and revokes, with a SessionRevoked event and no token in it', () => {
    const { session, refreshToken } = open();
    const rotated = session.refresh(refreshToken.digest(), at(10), policy);
    if (rotated.outcome !== 'rotated') throw new Error('expected a rotation');
    const reuse = rotated.session.refresh(refreshToken.digest(), at(11), policy);
    expect(reuse.outcome).toBe('reused');
    if (reuse.outcome !== 'reused') return;
    expect(reuse.session.revokedReason).toBe(SessionRevokedReason.RefreshTokenReused);
    expect(reuse.event).toMatchObject({ type: 'identity.v1.SessionRevoked', sessionId: session.id.value, reason: 'refresh_token_reused' });
    expect(JSON.stringify(reuse.event)).not.toContain(refreshToken.reveal());
    // After revocation nothing works, not even the newest token.
    expect(reuse.session.refresh(rotated.refreshToken.digest(), at(12), policy).outcome).toBe('revoked');
  });

  it('accepts the previous token within the grace only', () => {
    const grace = { ...policy, reuseGraceSeconds: 5 };
    const { session, refreshToken } = open();
    const rotated = session.refresh(refreshToken.digest(), at(10), grace);
    if (rotated.outcome !== 'rotated') throw new Error('expected a rotation');
    expect(rotated.session.refresh(refreshToken.digest(), at(15), grace).outcome).toBe('grace');
    expect(rotated.session.refresh(refreshToken.digest(), at(15.001), grace).outcome).toBe('reused');
  });

  it('ends at the idle and at the absolute expiry', () => {
    const { session, refreshToken } = open();
    expect(session.refresh(refreshToken.digest(), at(100), policy).outcome).toBe('expired');
    let current = session;
    let token = refreshToken;
    for (let t = 90; t < 1_000; t += 90) {
      const result = current.refresh(token.digest(), at(t), policy);
      if (result.outcome !== 'rotated') throw new Error(`expected a rotation at ${t}`);
      current = result.session;
      token = result.refreshToken;
    }
    expect(current.refreshExpiresAt).toEqual(at(1_000));
    expect(current.refresh(token.digest(), at(1_000), policy).outcome).toBe('expired');
  });
});

describe('InMemoryRevocationList', () => {
  let now = T0.getTime();
  const list = new InMemoryRevocationList({ clock: { now: () => new Date(now) }, horizonSeconds: 930, metrics: createMetrics(), logger: pino({ level: 'silent' }) });
  const token = (overrides: { sessionId?: string; userId?: string; issuedAt?: Date }) => ({
    userId: overrides.userId ?? UserId.generate().value,
    tokenId: 'jti',
    issuedAt: overrides.issuedAt ?? new Date(now - 1000),
    expiresAt: new Date(now + 900_000),
    ...(overrides.sessionId !== undefined && { sessionId: overrides.sessionId }),
  });

  it('refuses tokens of a revoked session, until the last of them has expired, then forgets it', () => {
    const sessionId = 'b0c3c1de-0000-4000-8000-000000000001';
    expect(() => list.check(token({ sessionId }))).not.toThrow();
    list.revokeSession(sessionId, now);
    expect(() => list.check(token({ sessionId }))).toThrow(InvalidTokenError);
    expect(list.size.sessions).toBe(1);
    now += 929_000;
    expect(() => list.check(token({ sessionId }))).toThrow(InvalidTokenError);
    now += 1_000;
    expect(() => list.check(token({ sessionId }))).not.toThrow();
    list.prune();
    expect(list.size.sessions).toBe(0);
  });

  it('refuses every token of a disabled user, and those issued before tokens_valid_after', () => {
    const disabled = UserId.generate().value;
    list.updateUser({ userId: disabled, status: 'disabled', tokensValidAfterMs: undefined, updatedAtMs: now });
    expect(() => list.check(token({ userId: disabled, issuedAt: new Date(now + 5_000) }))).toThrow(InvalidTokenError);
    list.updateUser({ userId: disabled, status: 'active', tokensValidAfterMs: undefined, updatedAtMs: now });
    expect(() => list.check(token({ userId: disabled }))).not.toThrow();

    const changed = UserId.generate().value;
    const cutoff = now + 500; // mid-second
    list.updateUser({ userId: changed, status: 'active', tokensValidAfterMs: cutoff, updatedAtMs: cutoff });
    expect(() => list.check(token({ userId: changed, issuedAt: new Date(Math.floor(cutoff / 1000) * 1000 - 1000) }))).toThrow(InvalidTokenError);
    expect(() => list.check(token({ userId: changed, issuedAt: new Date(Math.floor(cutoff / 1000) * 1000) }))).not.toThrow();
  });

  it('holds 100,000 revoked sessions in bounded memory and forgets them all at the horizon', () => {
    const start = now;
    for (let i = 0; i < 100_000; i++) list.revokeSession(`s-${i}`, start);
    expect(list.size.sessions).toBe(100_000);
    now = start + 930_000;
    list.prune();
    expect(list.size.sessions).toBe(0);
  });
});

describe('RefreshTokens and the caller deadline', () => {
  /** A use case over a fake unit of work that, like KnexUnitOfWork, rolls back when the signal it got has aborted. */
  function harness(session: Session) {
    const caller = new AbortController();
    const written: string[] = [];
    const outcomes: string[] = [];
    const scope = {
      sessions: {
        findByRefreshTokenForUpdate: () => {
          caller.abort(new Error('deadline')); // the deadline passes mid-transaction
          return Promise.resolve({ session, userActive: true });
        },
        saveRevocation: () => Promise.resolve(void written.push('revocation')),
        saveRotation: () => Promise.resolve(void written.push('rotation')),
      },
      outbox: { add: () => Promise.resolve(void written.push('event')) },
    };
    const uow = {
      run: async <T>(work: (scope: never) => Promise<T>, signal?: AbortSignal): Promise<T> => {
        const result = await work(scope as never);
        signal?.throwIfAborted();
        written.push('commit');
        return result;
      },
    };
    const issued = { token: 'jwt', tokenId: 'jti', issuedAt: at(2), expiresAt: at(900) };
    const useCase = new RefreshTokens({
      uow,
      tokens: { issue: () => Promise.resolve(issued), verify: () => Promise.reject(new Error('not used')) },
      clock: { now: () => at(2) },
      audit: { record: () => undefined },
      telemetry: { refreshed: (outcome) => void outcomes.push(outcome) },
      sessionPolicy: policy,
    });
    const run = (token: RefreshToken) => useCase.execute({ refreshToken: token.reveal(), clientAddress: '203.0.113.9', signal: caller.signal });
    return { run, written, outcomes };
  }

  it('commits a detected reuse even when the deadline passes during the transaction', async () => {
    const { session, refreshToken } = Session.open(UserId.generate(), '203.0.113.9', T0, policy);
    const rotated = session.refresh(refreshToken.digest(), at(1), policy);
    if (rotated.outcome !== 'rotated') throw new Error('expected a rotation');
    const { run, written, outcomes } = harness(rotated.session);
    await expect(run(refreshToken)).rejects.toThrow('invalid refresh token');
    expect(written).toEqual(['revocation', 'event', 'commit']);
    expect(outcomes).toEqual(['reused']);
  });

  it('rolls a rotation back when the deadline passes during the transaction: the presented token stays good', async () => {
    const { session, refreshToken } = Session.open(UserId.generate(), '203.0.113.9', T0, policy);
    const { run, written } = harness(session);
    await expect(run(refreshToken)).rejects.toThrow('deadline');
    expect(written).toEqual(['rotation']); // written, then rolled back: no commit
  });
});
