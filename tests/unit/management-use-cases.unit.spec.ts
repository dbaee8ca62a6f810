import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UserNotFoundError } from '../../src/domain/identity/identity.errors.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { aUser } from '../fakes/user.builder.js';
import { wireFakes } from '../fakes/wiring.js';

/** Issue 14: the user-management use cases against fakes (the end-to-end suite runs them on PostgreSQL). */

const types = (fakes: ReturnType<typeof wireFakes>) => fakes.outbox.events.map((event) => event.type);

describe('DisableUser and EnableUser', () => {
  it('disable: status, reason, tokens_valid_after, sessions revoked, two events; again: nothing at all', async () => {
    const fakes = wireFakes();
    const ann = aUser();
    await fakes.users.save(ann);
    await fakes.useCases.authenticate.execute({ email: 'Ann.Lee@example.com', password: 'correct horse battery', clientAddress: '10.0.0.1' });
    fakes.clock.advance(1_000);
    const disabled = await fakes.management.disableUser.execute({ userId: ann.id.value, reason: ' gone ' });
    expect(disabled).toMatchObject({ status: UserStatus.Disabled, disabledReason: 'gone' });
    expect(disabled.tokensValidAfter).toBeDefined();
    expect(fakes.sessions.all.map((session) => session.revokedReason)).toEqual(['user_disabled']);
    expect(types(fakes)).toEqual(['identity.v1.UserDisabled', 'identity.v1.SessionRevoked']);

    const again = await fakes.management.disableUser.execute({ userId: ann.id.value, reason: 'other' });
    expect(again.disabledReason).toBe('gone');
    expect(types(fakes)).toHaveLength(2);

    expect((await fakes.management.enableUser.execute({ userId: ann.id.value })).status).toBe(UserStatus.Active);
    await fakes.management.enableUser.execute({ userId: ann.id.value });
    expect(types(fakes)).toEqual(['identity.v1.UserDisabled', 'identity.v1.SessionRevoked', 'identity.v1.UserEnabled']);
  });

  it('answers NOT_FOUND for unknown and deleted users, INVALID_ARGUMENT for malformed ids', async () => {
    const fakes = wireFakes();
    const gone = aUser({ status: UserStatus.Deleted });
    await fakes.users.save(gone);
    await expect(fakes.management.disableUser.execute({ userId: gone.id.value, reason: '' })).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(fakes.management.enableUser.execute({ userId: '0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d' })).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(fakes.management.deleteUser.execute({ userId: 'x' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(fakes.outbox.events).toEqual([]);
  });
});

describe('DeleteUser', () => {
  it('erases the user, keeps its id, and frees the email key for a new registration', async () => {
    const fakes = wireFakes();
    const ann = aUser();
    await fakes.users.save(ann);
    await fakes.management.deleteUser.execute({ userId: ann.id.value });
    const stored = fakes.users.all.find((user) => user.id.equals(ann.id))!;
    expect(stored.status).toBe(UserStatus.Deleted);
    expect([stored.email.value, stored.firstName.value, stored.lastName.value, stored.passwordHash.reveal()]).toEqual(['', '', '', '']);
    expect(types(fakes)).toEqual(['identity.v1.SessionRevoked', 'identity.v1.UserDeleted']);
    expect(Object.keys(fakes.outbox.events.at(-1)!).sort()).toEqual(['aggregateId', 'eventId', 'occurredAt', 'type', 'userId']);
    await expect(fakes.management.deleteUser.execute({ userId: ann.id.value })).rejects.toBeInstanceOf(UserNotFoundError);
  });
});

describe('ListUsers', () => {
  it('pages by id, skips deleted users, and refuses a token used with other filters', async () => {
    const fakes = wireFakes();
    for (let i = 0; i < 5; i++) await fakes.users.save(aUser({ email: `u${i}@example.com` }));
    await fakes.users.save(aUser({ email: 'gone@example.com', status: UserStatus.Deleted }));
    const first = await fakes.management.listUsers.execute({ pageSize: 3, pageToken: '', status: undefined, emailPrefix: 'U' });
    const second = await fakes.management.listUsers.execute({ pageSize: 3, pageToken: first.nextPageToken, status: undefined, emailPrefix: 'u' });
    expect(second.nextPageToken).toBe('');
    const ids = [...first.users, ...second.users].map((user) => user.id.value);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toHaveLength(5);
    await expect(fakes.management.listUsers.execute({ pageSize: 3, pageToken: first.nextPageToken, status: undefined, emailPrefix: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(fakes.management.listUsers.execute({ pageSize: 0, pageToken: '', status: 'invalid', emailPrefix: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('UpdateUserProfile', () => {
  it('changes the names given, keeps the others, and writes one event; the same names again change nothing', async () => {
    const fakes = wireFakes();
    const ann = aUser();
    await fakes.users.save(ann);
    fakes.clock.advance(1_000);
    const updated = await fakes.management.updateUserProfile.execute({ userId: ann.id.value, firstName: ' Anna ' });
    expect({ first: updated.firstName.value, last: updated.lastName.value }).toEqual({ first: 'Anna', last: ann.lastName.value });
    expect(updated.updatedAt.getTime()).toBeGreaterThan(ann.updatedAt.getTime());
    expect(fakes.outbox.events).toEqual([expect.objectContaining({ type: 'identity.v1.UserProfileUpdated', userId: ann.id.value, firstName: 'Anna', lastName: ann.lastName.value })]);
    expect((await fakes.users.findById(ann.id))?.firstName.value).toBe('Anna');

    const again = await fakes.management.updateUserProfile.execute({ userId: ann.id.value, firstName: 'Anna', lastName: ann.lastName.value });
    expect(again.updatedAt).toEqual(updated.updatedAt);
    expect(fakes.outbox.events).toHaveLength(1);
  });

  it('applies the registration rules to names and answers NOT_FOUND for an erased user, writing nothing', async () => {
    const fakes = wireFakes();
    const ann = aUser();
    const gone = aUser({ email: 'gone@example.com', status: UserStatus.Deleted });
    await fakes.users.save(ann);
    await fakes.users.save(gone);
    await expect(fakes.management.updateUserProfile.execute({ userId: ann.id.value, lastName: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(fakes.management.updateUserProfile.execute({ userId: gone.id.value, firstName: 'Zed' })).rejects.toBeInstanceOf(UserNotFoundError);
    expect(fakes.outbox.events).toEqual([]);
  });
});

describe('ListSessions and RevokeUserSessions', () => {
  it('lists the live sessions of a user; revoking them all leaves none and counts them', async () => {
    const fakes = wireFakes();
    const ann = aUser();
    await fakes.users.save(ann);
    for (const clientAddress of ['10.0.0.1', '10.0.0.2']) {
      await fakes.useCases.authenticate.execute({ email: 'Ann.Lee@example.com', password: 'correct horse battery', clientAddress });
    }
    const live = await fakes.management.listSessions.execute({ userId: ann.id.value });
    expect(live.map((session) => session.clientAddress).sort()).toEqual(['10.0.0.1', '10.0.0.2']);

    await fakes.management.revokeUserSessions.execute({ userId: ann.id.value });
    expect(await fakes.management.listSessions.execute({ userId: ann.id.value })).toEqual([]);
    expect(types(fakes)).toContain('identity.v1.SessionRevoked');
  });

  it('answers NOT_FOUND for an unknown user and INVALID_ARGUMENT for a malformed id', async () => {
    const fakes = wireFakes();
    await expect(fakes.management.listSessions.execute({ userId: '0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d' })).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(fakes.management.listSessions.execute({ userId: 'not-a-uuid' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
