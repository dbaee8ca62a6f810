import type { User } from '../../domain/identity/user.entity.js';
import { PersonName } from '../../domain/identity/value-objects/person-name.value-object.js';
import { ok } from '../../domain/shared/result.js';
import { requireValid } from '../field-validation.js';
import { lockManagedUser } from '../managed-user.js';
import type { Clock } from '../ports/clock.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';
import { parseUserId } from '../user-id-input.js';

export interface UpdateUserProfileCommand {
  readonly userId: string;
  /** Undefined: left as it is. */
  readonly firstName?: string | undefined;
  readonly lastName?: string | undefined;
  readonly signal?: AbortSignal;
}

/**
 * Changes a user's names (the registration rules apply) and writes UserProfileUpdated in the
 * same transaction. Names equal to the current ones change nothing and write no event.
 */
export class UpdateUserProfile {
  constructor(private readonly deps: { readonly uow: UnitOfWork; readonly clock: Clock }) {}

  async execute(command: UpdateUserProfileCommand): Promise<User> {
    const input = requireValid({
      user_id: parseUserId(command.userId),
      first_name: command.firstName === undefined ? ok(undefined) : PersonName.parse(command.firstName),
      last_name: command.lastName === undefined ? ok(undefined) : PersonName.parse(command.lastName),
    });
    return this.deps.uow.run(async (scope) => {
      const user = await lockManagedUser(scope.users, input.user_id);
      const change = user.updateProfile({ firstName: input.first_name, lastName: input.last_name }, this.deps.clock.now());
      if (change === undefined) return user;
      await scope.users.update(change.user, user.updatedAt);
      await scope.outbox.add(change.event);
      return change.user;
    }, command.signal);
  }
}
