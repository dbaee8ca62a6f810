import { InvalidArgumentError, type FieldViolation } from '../../domain/identity/identity.errors.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import type { User } from '../../domain/identity/user.entity.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import type { UserRepository } from '../ports/user.repository.port.js';
import { parseUserId } from '../user-id-input.js';

const MAX_BATCH_USER_IDS = 100;

export interface UserBatch {
  /** In the order asked for, each once. */
  readonly users: readonly User[];
  /** The ids asked for (as given, each once) that name no user, or a deleted one. */
  readonly missingUserIds: readonly string[];
}

/** Up to 100 users by id in one query. */
export class BatchGetUsers {
  constructor(private readonly users: UserRepository) {}

  async execute(userIds: readonly string[]): Promise<UserBatch> {
    if (userIds.length === 0 || userIds.length > MAX_BATCH_USER_IDS) {
      throw new InvalidArgumentError([{ field: 'user_ids', description: `must list 1 to ${MAX_BATCH_USER_IDS} ids` }]);
    }
    const violations: FieldViolation[] = [];
    const wanted = new Map<string, { raw: string; id: UserId }>();
    userIds.forEach((raw, index) => {
      const parsed = parseUserId(raw);
      if (!parsed.ok) violations.push({ field: `user_ids[${index}]`, description: parsed.error });
      else if (!wanted.has(parsed.value.value)) wanted.set(parsed.value.value, { raw, id: parsed.value });
    });
    if (violations.length > 0) throw new InvalidArgumentError(violations);
    const found = new Map((await this.users.findByIds([...wanted.values()].map((entry) => entry.id))).map((user) => [user.id.value, user]));
    const users: User[] = [];
    const missingUserIds: string[] = [];
    for (const [key, { raw }] of wanted) {
      const user = found.get(key);
      if (user === undefined || user.status === UserStatus.Deleted) missingUserIds.push(raw);
      else users.push(user);
    }
    return { users, missingUserIds };
  }
}
