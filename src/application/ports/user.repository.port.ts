import type { User } from '../../domain/identity/user.entity.js';
import type { UserStatus } from '../../domain/identity/user-status.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';

/** One page of ListUsers: ids above `afterId`, in id order, at most `limit`. */
export interface UserListQuery {
  readonly limit: number;
  /** The last id of the previous page (keyset pagination); undefined for the first page. */
  readonly afterId?: string | undefined;
  /** One status; undefined: every status but deleted. */
  readonly status?: UserStatus | undefined;
  /** Only users whose email key starts with this (already normalised as keys are). */
  readonly emailKeyPrefix?: string | undefined;
}

/** Users by id and by email key (the address lower-cased, see `Email.key`). */
export interface UserRepository {
  findById(id: UserId): Promise<User | undefined>;
  /** The users of these ids that exist, in no particular order. */
  findByIds(ids: readonly UserId[]): Promise<User[]>;
  /** Reads the user and locks its row until the transaction ends: the changes of operators take turns. */
  findByIdForUpdate(id: UserId): Promise<User | undefined>;
  /** A page of users (ListUsers). */
  list(query: UserListQuery): Promise<User[]>;
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
