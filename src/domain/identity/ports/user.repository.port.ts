import type { User } from '../user.entity.js';
import type { UserId } from '../value-objects/user-id.value-object.js';

/** Users by id and by email key (the address lower-cased, see `Email.key`). */
export interface UserRepository {
  findById(id: UserId): Promise<User | undefined>;
  findByEmail(emailKey: string): Promise<User | undefined>;
  existsByEmail(emailKey: string): Promise<boolean>;
  /** Inserts a new user; throws UserAlreadyExistsError when the email key is taken. */
  save(user: User): Promise<void>;
  update(user: User): Promise<void>;
}
