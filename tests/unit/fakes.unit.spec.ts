import { describe, expect, it } from 'vitest';
import { UserAlreadyExistsError } from '../../src/domain/identity/identity.errors.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { FakeOutbox } from '../fakes/outbox.fake.js';
import { FakeSessionRepository } from '../fakes/session-repository.fake.js';
import { FakeUnitOfWork } from '../fakes/unit-of-work.fake.js';
import { aUser, changedBySomeoneElse } from '../fakes/user.builder.js';
import { FakeUserRepository } from '../fakes/user-repository.fake.js';

// The use-case tests are only as good as the fakes' rules: these are the rules of the real
// adapters (tests/int/user-repository and unit-of-work check those against PostgreSQL).

const event = (userId: string) => ({
  type: 'identity.v1.UserRegistered' as const,
  eventId: `event-of-${userId}`,
  aggregateId: userId,
  userId,
  email: 'x@example.com',
  firstName: 'X',
  lastName: 'Y',
  occurredAt: new Date(0),
});

describe('FakeUserRepository', () => {
  it('refuses a second user whose email differs only in case, as the unique email key does', async () => {
    const users = new FakeUserRepository();
    await users.save(aUser({ email: 'Ann@example.com' }));
    await expect(users.save(aUser({ email: 'ann@EXAMPLE.com' }))).rejects.toBeInstanceOf(UserAlreadyExistsError);
    expect(users.all).toHaveLength(1);
  });

  it('writes an update only over the row as it was read', async () => {
    const users = new FakeUserRepository();
    const ann = aUser();
    await users.save(ann);
    const disabled = changedBySomeoneElse(ann, UserStatus.Disabled, new Date('2030-01-01T00:00:00Z'));
    expect(await users.update(disabled, ann.updatedAt)).toBe(true);
    expect(await users.update(ann, ann.updatedAt)).toBe(false);
    expect((await users.findById(ann.id))?.status).toBe(UserStatus.Disabled);
    expect(await users.update(aUser(), ann.updatedAt)).toBe(false); // no such row
  });
});

describe('FakeUnitOfWork', () => {
  const setup = () => {
    const users = new FakeUserRepository();
    const outbox = new FakeOutbox();
    return { users, outbox, uow: new FakeUnitOfWork(users, outbox, new FakeSessionRepository()) };
  };

  it('shows the writes to the stores only once the work resolves', async () => {
    const { users, outbox, uow } = setup();
    const ann = aUser();
    await uow.run(async (scope) => {
      await scope.users.save(ann);
      await scope.outbox.add(event(ann.id.value));
      expect(users.all).toEqual([]);
      expect(await scope.users.findById(ann.id)).toBe(ann);
    });
    expect(users.all).toEqual([ann]);
    expect(outbox.events.map((e) => e.userId)).toEqual([ann.id.value]);
  });

  it('discards every write of work that throws', async () => {
    const { users, outbox, uow } = setup();
    const failure = new Error('outbox insert failed');
    await expect(
      uow.run(async (scope) => {
        await scope.users.save(aUser());
        await scope.outbox.add(event('x'));
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(users.all).toEqual([]);
    expect(outbox.events).toEqual([]);
  });

  it('rolls back work whose signal aborted before the commit', async () => {
    const { users, uow } = setup();
    const deadline = new AbortController();
    await expect(
      uow.run(async (scope) => {
        await scope.users.save(aUser());
        deadline.abort(new Error('deadline'));
      }, deadline.signal),
    ).rejects.toThrow('deadline');
    expect(users.all).toEqual([]);
  });

  it('commits one of two transactions inserting the same email key, all or nothing', async () => {
    const { users, outbox, uow } = setup();
    const insert = (email: string) =>
      uow.run(async (scope) => {
        const user = aUser({ email });
        await scope.users.save(user);
        await scope.outbox.add(event(user.id.value));
      });
    const results = await Promise.allSettled([insert('Ann@example.com'), insert('ANN@example.com')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(users.all).toHaveLength(1);
    expect(outbox.events).toHaveLength(1);
  });
});
