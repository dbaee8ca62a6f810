import { UserNotFoundError } from '../../domain/identity/identity.errors.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import type { User } from '../../domain/identity/user.entity.js';
import { requireValid } from '../field-validation.js';
import type { UserRepository } from '../ports/user.repository.port.js';
import { parseUserId } from '../user-id-input.js';

/** One user by id; an unknown or deleted one is UserNotFoundError. */
export class GetUser {
  constructor(private readonly users: UserRepository) {}

  async execute(userId: string): Promise<User> {
    const input = requireValid({ user_id: parseUserId(userId) });
    const user = await this.users.findById(input.user_id);
    if (user === undefined || user.status === UserStatus.Deleted) throw new UserNotFoundError();
    return user;
  }
}
