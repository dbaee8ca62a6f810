import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OverloadedError, ServiceUnavailableError } from '../../src/application/application.errors.js';
import { InvalidArgumentError, InvalidCredentialsError, TooManyAttemptsError } from '../../src/domain/identity/identity.errors.js';
import type { User } from '../../src/domain/identity/user.entity.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { aUser, changedBySomeoneElse } from '../fakes/user.builder.js';
import { wireFakes, type Fakes } from '../fakes/wiring.js';

const CLIENT = '203.0.113.7';
const PASSWORD = 'correct horse battery';
const login = { email: 'ann.lee@EXAMPLE.com', password: PASSWORD, clientAddress: CLIENT };
const EMAIL_KEY = 'email:ann.lee@example.com';
const CLIENT_KEY = `client:${CLIENT}`;

/** What a caller can see of an error: everything but the stack. */
const visible = (error: unknown) => {
  const { name, message, code } = error as InvalidCredentialsError;
  return { name, message, code, keys: Object.keys(error as object) };
};

describe('Authenticate', () => {
  let fakes: Fakes;
  let ann: User;
  beforeEach(async () => {
    fakes = wireFakes();
    ann = aUser({ email: 'Ann.Lee@example.com', password: PASSWORD });
    await fakes.users.save(ann);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const authenticate = (overrides: Partial<typeof login> & { signal?: AbortSignal } = {}) => fakes.useCases.authenticate.execute({ ...login, ...overrides });
  const failureOf = (overrides: Partial<typeof login> = {}) => authenticate(overrides).then(() => expect.unreachable('logged in'), (e: unknown) => e);

  describe('the right password', () => {
    it('issues a token for the user, found by the email in any case', async () => {
      const { user, token, session } = await authenticate();
      expect(user.id.value).toBe(ann.id.value);
      expect(await fakes.tokens.verify(token.token)).toMatchObject({ userId: ann.id.value, sessionId: session.id.value });
      // The session is committed with the login, for the user, from the caller's address.
      expect(fakes.sessions.all.map((s) => [s.id.value, s.userId.value, s.clientAddress])).toEqual([[session.id.value, ann.id.value, CLIENT]]);
      expect(token.expiresAt.getTime()).toBeGreaterThan(fakes.clock.now().getTime());
    });

    it('spends exactly one comparison and no hash when the stored cost is current', async () => {
      await authenticate();
      expect(fakes.hasher.calls).toEqual({ hash: 0, verify: 1 });
    });

    it('clears the email count and takes the client attempt back', async () => {
      await failureOf({ password: 'wrong password' });
      await failureOf({ password: 'wrong password' });
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(2);
      await authenticate();
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(0);
      // The two failures stay counted against the client; only the successful attempt is taken back.
      expect(fakes.throttle.failures(CLIENT_KEY)).toBe(2);
    });

    it('audits the success with the user id', async () => {
      await authenticate();
      expect(fakes.audit.entries).toEqual([{ action: 'login', outcome: 'success', clientAddress: CLIENT, email: 'ann.lee@example.com', userId: ann.id.value }]);
    });
  });

  describe('unknown email, wrong password and disabled user', () => {
    it('end in one error a caller cannot tell apart', async () => {
      const wrong = await failureOf({ password: 'wrong password' });
      const unknown = await failureOf({ email: 'nobody@example.com' });
      await fakes.users.save(aUser({ email: 'off@example.com', password: PASSWORD, status: UserStatus.Disabled }));
      const disabled = await failureOf({ email: 'off@example.com' });
      for (const error of [wrong, unknown, disabled]) expect(error).toBeInstanceOf(InvalidCredentialsError);
      expect(visible(unknown)).toEqual(visible(wrong));
      expect(visible(disabled)).toEqual(visible(wrong));
    });

    it('each spend exactly one comparison, so their timing matches (unknown email included)', async () => {
      await fakes.users.save(aUser({ email: 'off@example.com', password: PASSWORD, status: UserStatus.Disabled }));
      for (const attempt of [{ password: 'wrong password' }, { email: 'nobody@example.com' }, { email: 'off@example.com' }]) {
        const before = fakes.hasher.calls.verify;
        await failureOf(attempt);
        expect(fakes.hasher.calls.verify - before).toBe(1);
      }
      expect(fakes.hasher.calls.hash).toBe(0);
    });

    it('count one failure against the email and the client, and issue no token', async () => {
      const issue = vi.spyOn(fakes.tokens, 'issue');
      await failureOf({ password: 'wrong password' });
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(1);
      expect(fakes.throttle.failures(CLIENT_KEY)).toBe(1);
      expect(issue).not.toHaveBeenCalled();
    });

    it('audit a failure, with the user id only when the user exists', async () => {
      await failureOf({ password: 'wrong password' });
      await failureOf({ email: 'nobody@example.com' });
      expect(fakes.audit.entries).toEqual([
        { action: 'login', outcome: 'failure', clientAddress: CLIENT, email: 'ann.lee@example.com', userId: ann.id.value },
        { action: 'login', outcome: 'failure', clientAddress: CLIENT, email: 'nobody@example.com' },
      ]);
    });
  });

  describe('throttled', () => {
    beforeEach(async () => {
      for (let i = 0; i < 5; i++) await failureOf({ password: 'wrong password' });
    });

    it('refuses the sixth attempt with a retry delay, even with the right password, without a comparison', async () => {
      const comparisons = fakes.hasher.calls.verify;
      const error = await failureOf();
      expect(error).toBeInstanceOf(TooManyAttemptsError);
      expect((error as TooManyAttemptsError).retryAfterSeconds).toBe(1);
      expect(fakes.hasher.calls.verify).toBe(comparisons);
      expect(fakes.audit.entries.at(-1)).toEqual({ action: 'login', outcome: 'throttled', clientAddress: CLIENT, email: 'ann.lee@example.com' });
    });

    it('lets the right password in once the delay is over', async () => {
      await expect(authenticate()).rejects.toBeInstanceOf(TooManyAttemptsError);
      fakes.clock.advance(1_000);
      await expect(authenticate()).resolves.toMatchObject({ user: { id: ann.id } });
    });

    it('passes on a throttle that cannot answer, unaudited and without a comparison', async () => {
      vi.spyOn(fakes.throttle, 'begin').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
      fakes.clock.advance(60_000);
      const entries = fakes.audit.entries.length;
      const comparisons = fakes.hasher.calls.verify;
      await expect(authenticate()).rejects.toBeInstanceOf(ServiceUnavailableError);
      expect(fakes.audit.entries).toHaveLength(entries);
      expect(fakes.hasher.calls.verify).toBe(comparisons);
    });
  });

  describe('an attempt that ends before any comparison is not held against the caller', () => {
    it('a full hashing queue: OverloadedError, and the attempt is taken back from both keys', async () => {
      fakes.hasher.queueFull = true;
      await expect(authenticate()).rejects.toBeInstanceOf(OverloadedError);
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(0);
      expect(fakes.throttle.failures(CLIENT_KEY)).toBe(0);
      expect(fakes.audit.entries).toEqual([]);
    });

    it('the database down at the lookup: ServiceUnavailableError, and the attempt is taken back', async () => {
      vi.spyOn(fakes.users, 'findByEmail').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
      await expect(authenticate()).rejects.toBeInstanceOf(ServiceUnavailableError);
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(0);
      expect(fakes.hasher.calls.verify).toBe(0);
    });

    it('a take-back that fails too still answers with the original error', async () => {
      fakes.hasher.queueFull = true;
      vi.spyOn(fakes.throttle, 'abandoned').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
      await expect(authenticate()).rejects.toBeInstanceOf(OverloadedError);
    });

    it('only these two: a bug in the lookup is not taken back', async () => {
      vi.spyOn(fakes.users, 'findByEmail').mockRejectedValueOnce(new TypeError('bug'));
      await expect(authenticate()).rejects.toBeInstanceOf(TypeError);
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(1);
    });
  });

  describe('deadline', () => {
    it('a deadline passing during the comparison fails the call and the attempt stays counted (the comparison ran)', async () => {
      const deadline = new AbortController();
      const reason = new Error('deadline exceeded');
      vi.spyOn(fakes.users, 'findByEmail').mockImplementationOnce(async (key) => {
        const found = await fakes.users.snapshot().findByEmail(key);
        deadline.abort(reason);
        return found;
      });
      const issue = vi.spyOn(fakes.tokens, 'issue');
      await expect(authenticate({ signal: deadline.signal })).rejects.toBe(reason);
      expect(fakes.hasher.calls.verify).toBe(1);
      expect(fakes.throttle.failures(EMAIL_KEY)).toBe(1);
      expect(issue).not.toHaveBeenCalled();
      expect(fakes.audit.entries).toEqual([]);
    });

    it('a call whose deadline has already passed fails with its reason and audits nothing', async () => {
      const reason = new Error('deadline exceeded');
      await expect(authenticate({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(fakes.audit.entries).toEqual([]);
    });
  });

  describe('a hash made at a lower cost is upgraded on login, best effort', () => {
    let old: User;
    beforeEach(async () => {
      old = aUser({ email: 'old@example.com', password: PASSWORD, cost: 10 });
      await fakes.users.save(old);
    });
    const oldLogin = { email: 'old@example.com' };

    it('stores a hash at the current cost that still matches, and answers with the upgraded user', async () => {
      const { user } = await authenticate(oldLogin);
      const stored = await fakes.users.findById(old.id);
      expect(stored && fakes.hasher.needsRehash(stored.passwordHash)).toBe(false);
      expect(stored?.updatedAt).toEqual(fakes.clock.now());
      expect(user.updatedAt).toEqual(fakes.clock.now());
      expect(fakes.hasher.calls.hash).toBe(1);
      await expect(authenticate(oldLogin)).resolves.toBeDefined();
      expect(fakes.hasher.calls.hash).toBe(1);
    });

    it('a busy hasher postpones the upgrade: the login succeeds and the old hash stays', async () => {
      vi.spyOn(fakes.hasher, 'hash').mockRejectedValueOnce(new OverloadedError());
      const { user, token } = await authenticate(oldLogin);
      expect(user.id.value).toBe(old.id.value);
      expect(token.token).not.toBe('');
      expect((await fakes.users.findById(old.id))?.passwordHash.reveal()).toBe(old.passwordHash.reveal());
      expect(fakes.audit.entries.at(-1)?.outcome).toBe('success');
    });

    it('a change made meanwhile (a disable) is not overwritten by the upgrade, and no session opens', async () => {
      const disabled = changedBySomeoneElse(old, UserStatus.Disabled, new Date('2025-07-01T00:00:00Z'));
      const hash = fakes.hasher.hash.bind(fakes.hasher);
      vi.spyOn(fakes.hasher, 'hash').mockImplementationOnce(async (password, signal) => {
        await fakes.users.update(disabled, old.updatedAt); // an administrator, while bcrypt runs
        return hash(password, signal);
      });
      // The session is opened over the user as it now is: disabled, so no login either.
      await expect(authenticate(oldLogin)).rejects.toBeInstanceOf(InvalidCredentialsError);
      expect(fakes.sessions.all).toEqual([]);
      const stored = await fakes.users.findById(old.id);
      expect(stored?.status).toBe(UserStatus.Disabled);
      expect(stored?.passwordHash.reveal()).toBe(old.passwordHash.reveal());
      expect(stored?.updatedAt).toEqual(disabled.updatedAt);
    });

    it('a database failure while writing the upgrade fails the call (only a busy hasher is forgiven)', async () => {
      vi.spyOn(fakes.uow, 'run').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
      await expect(authenticate(oldLogin)).rejects.toBeInstanceOf(ServiceUnavailableError);
      expect((await fakes.users.findById(old.id))?.passwordHash.reveal()).toBe(old.passwordHash.reveal());
    });

    it('a deadline passing during the upgrade leaves the old hash', async () => {
      const deadline = new AbortController();
      const reason = new Error('deadline exceeded');
      const hash = fakes.hasher.hash.bind(fakes.hasher);
      vi.spyOn(fakes.hasher, 'hash').mockImplementationOnce((password, signal) => {
        deadline.abort(reason);
        return hash(password, signal); // stops waiting only if the use case passed its signal on
      });
      await expect(authenticate({ ...oldLogin, signal: deadline.signal })).rejects.toBe(reason);
      expect(fakes.uow.commits + fakes.uow.rollbacks).toBe(0);
      expect((await fakes.users.findById(old.id))?.passwordHash.reveal()).toBe(old.passwordHash.reveal());
    });
  });

  describe('input', () => {
    it('checks only presence and size: a malformed address that matches no one is a wrong login', async () => {
      await expect(authenticate({ email: 'not an address' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    });

    it.each([
      ['an empty email', { email: '   ' }, 'email', 'is required'],
      ['an email over 254 bytes', { email: `${'a'.repeat(250)}@x.io` }, 'email', 'must be at most 254 bytes'],
      ['an email that was not UTF-8', { email: 'ann\uD800@x.io' }, 'email', 'must be valid UTF-8'],
      ['an empty password', { password: '' }, 'password', 'is required'],
      ['a password over 72 bytes', { password: 'é'.repeat(37) }, 'password', 'must be at most 72 bytes in UTF-8'],
    ])('refuses %s as INVALID_ARGUMENT before counting anything', async (_, overrides, field, description) => {
      const error = await failureOf(overrides);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).violations).toEqual([{ field, description }]);
      expect(fakes.throttle.failures(CLIENT_KEY)).toBe(0);
    });

    it('lets in a registered address that is within 254 bytes only as stored (lower-casing lengthens Ⱥ)', async () => {
      // 64 bytes of Ⱥ (2 bytes each; its lower case ⱥ is 3) + @ + a 189-byte domain = 254 bytes as stored, 286 as key.
      const domain = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(61)}`;
      const email = `${'Ⱥ'.repeat(32)}@${domain}`;
      const long = aUser({ email, password: PASSWORD });
      await fakes.users.save(long);
      const { user } = await authenticate({ email });
      expect(user.id.value).toBe(long.id.value);
    });
  });
});
