import { UserNotFoundError } from '../domain/identity/identity.errors.js';
import { UserStatus } from '../domain/identity/user-status.js';
import type { User } from '../domain/identity/user.entity.js';
import type { UserId } from '../domain/identity/value-objects/user-id.value-object.js';
import type { UserRepository } from './ports/user.repository.port.js';

/**
 * The user an operator acts on, read and locked in the caller's transaction (changes to one
 * user take turns); an unknown or erased one is UserNotFoundError.
 */
export async function lockManagedUser(users: UserRepository, id: UserId): Promise<User> {
  const user = await users.findByIdForUpdate(id);
  if (user === undefined || user.status === UserStatus.Deleted) throw new UserNotFoundError();
  return user;
}

/** The same, without a lock (reads outside a transaction). */
export async function findManagedUser(users: UserRepository, id: UserId): Promise<User> {
  const user = await users.findById(id);
  if (user === undefined || user.status === UserStatus.Deleted) throw new UserNotFoundError();
  return user;
}
