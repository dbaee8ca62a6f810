import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UserNotFoundError } from '../../src/domain/identity/identity.errors.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { aUser } from '../fakes/user.builder.js';
import { wireFakes } from '../fakes/wiring.js';

describe('GetUser', () => {
  it('answers the user of an id given in any case; a deleted or unknown one is not found', async () => {
    const { users, useCases } = wireFakes();
    const ann = aUser();
    const gone = aUser({ email: 'gone@example.com', status: UserStatus.Deleted });
    await users.save(ann);
    await users.save(gone);
    expect((await useCases.getUser.execute(ann.id.value.toUpperCase())).id.value).toBe(ann.id.value);
    await expect(useCases.getUser.execute(gone.id.value)).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(useCases.getUser.execute('0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d')).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(useCases.getUser.execute('not-a-uuid')).rejects.toMatchObject({ violations: [{ field: 'user_id', description: 'must be a UUID' }] });
  });
});

describe('BatchGetUsers', () => {
  it('answers the users found once each, and lists the missing ids as the caller spelt them', async () => {
    const { users, useCases } = wireFakes();
    const ann = aUser();
    const gone = aUser({ email: 'gone@example.com', status: UserStatus.Deleted });
    await users.save(ann);
    await users.save(gone);
    const unknown = '0B5E1A2C-3D4F-4A6B-8C9D-0E1F2A3B4C5D';
    const batch = await useCases.batchGetUsers.execute([ann.id.value, ann.id.value.toUpperCase(), gone.id.value, unknown]);
    expect(batch.users.map((u) => u.id.value)).toEqual([ann.id.value]);
    expect(batch.missingUserIds).toEqual([gone.id.value, unknown]);
  });

  it('refuses an empty or oversized list, and names every malformed id by its index', async () => {
    const { useCases } = wireFakes();
    await expect(useCases.batchGetUsers.execute([])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(useCases.batchGetUsers.execute(Array.from({ length: 101 }, () => aUser().id.value))).rejects.toBeInstanceOf(InvalidArgumentError);
    const error = await useCases.batchGetUsers.execute([aUser().id.value, 'x', 'y']).catch((e: unknown) => e);
    expect((error as InvalidArgumentError).violations.map((v) => v.field)).toEqual(['user_ids[1]', 'user_ids[2]']);
  });
});
