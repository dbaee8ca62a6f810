import type { User } from '../../domain/identity/user.entity.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

/** Users by id and by email key (the address lower-cased, see `Email.key`). */
export interface UserRepository {
  findById(id: UserId): Promise<User | undefined>;
  /** The users of these ids that exist, in no particular order. */
  findByIds(ids: readonly UserId[]): Promise<User[]>;
  /**
   * Reads the user and holds a share lock on its row until the transaction ends, so that a
   * concurrent disable or delete waits for (or is seen by) what this transaction writes.
   */
  findByIdForShare(id: UserId): Promise<User | undefined>;
  findByEmail(emailKey: string): Promise<User | undefined>;
  existsByEmail(emailKey: string): Promise<boolean>;
  /** Inserts a new user; throws UserAlreadyExistsError when the email key is taken. */
  save(user: User): Promise<void>;
  /**
   * Writes a changed user if its row is as it was read: its updated_at is still
   * `readUpdatedAt` (optimistic concurrency: a change made meanwhile, say a disable, is never
   * overwritten). False when nothing was written: the row changed, or is gone.
   */
  update(user: User, readUpdatedAt: Date): Promise<boolean>;
}
