import { afterEach, describe, expect, it, vi } from 'vitest';
import { type InvalidArgumentError, InvalidCredentialsError } from '../../src/domain/identity/identity.errors.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { PlainPassword } from '../../src/domain/identity/value-objects/plain-password.value-object.js';
import { aUser, changedBySomeoneElse } from '../fakes/user.builder.js';
import { wireFakes } from '../fakes/wiring.js';

const CLIENT = '203.0.113.7';
const OLD = 'correct horse battery';
const NEW = 'a brand new passphrase';
const change = { email: 'ann.lee@example.com', currentPassword: OLD, newPassword: NEW, clientAddress: CLIENT };

const plain = (text: string) => {
  const parsed = PlainPassword.parse(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};

async function withSession() {
  const fakes = wireFakes();
  const ann = aUser({ password: OLD });
  await fakes.users.save(ann);
  await fakes.useCases.authenticate.execute({ email: change.email, password: OLD, clientAddress: CLIENT });
  return { ...fakes, ann };
}

describe('ChangePassword', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('stores a hash of the new password, ends every session of the user, and says so in events and the audit', async () => {
    const { useCases, users, sessions, outbox, audit, hasher, ann } = await withSession();
    const events = outbox.events.length;
    await useCases.changePassword.execute(change);
    const stored = await users.findById(ann.id);
    expect(await hasher.verify(plain(NEW), stored?.passwordHash)).toBe(true);
    expect(await hasher.verify(plain(OLD), stored?.passwordHash)).toBe(false);
    expect(sessions.all.map((s) => s.revokedReason)).toEqual(['password_changed']);
    expect(outbox.events.length - events).toBe(2);
    expect(audit.entries.at(-1)).toMatchObject({ action: 'change_password', outcome: 'success', userId: ann.id.value });
  });

  it('a wrong current password changes nothing and is counted like a failed login', async () => {
    const { useCases, users, sessions, throttle, ann } = await withSession();
    await expect(useCases.changePassword.execute({ ...change, currentPassword: 'not the password' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect((await users.findById(ann.id))?.passwordHash.reveal()).toBe(ann.passwordHash.reveal());
    expect(sessions.all.map((s) => s.revokedAt)).toEqual([undefined]);
    expect(throttle.failures('email:ann.lee@example.com')).toBe(1);
  });

  it('a weak new password is INVALID_ARGUMENT naming new_password, before any check', async () => {
    const { useCases, hasher } = await withSession();
    const before = hasher.calls.verify;
    const error = await useCases.changePassword.execute({ ...change, newPassword: 'password1' }).catch((e: unknown) => e);
    expect((error as InvalidArgumentError).violations).toEqual([{ field: 'new_password', description: 'is too common' }]);
    expect(hasher.calls.verify).toBe(before);
  });

  it('a user disabled while the new hash is made stays as it is: no change, no session ended', async () => {
    const { useCases, users, sessions, hasher, audit, ann } = await withSession();
    const hash = hasher.hash.bind(hasher);
    vi.spyOn(hasher, 'hash').mockImplementationOnce(async (password, signal) => {
      await users.update(changedBySomeoneElse(ann, UserStatus.Disabled, new Date('2030-01-01T00:00:00Z')), ann.updatedAt);
      return hash(password, signal);
    });
    await expect(useCases.changePassword.execute(change)).rejects.toBeInstanceOf(InvalidCredentialsError);
    const stored = await users.findById(ann.id);
    expect(stored?.status).toBe(UserStatus.Disabled);
    expect(stored?.passwordHash.reveal()).toBe(ann.passwordHash.reveal());
    expect(sessions.all.map((s) => s.revokedAt)).toEqual([undefined]);
    expect(audit.entries.at(-1)).toMatchObject({ action: 'change_password', outcome: 'failure' });
  });
});
