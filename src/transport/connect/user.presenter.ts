import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { User } from '../../domain/identity/user.entity.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import { UserSchema, UserStatus as UserStatusMessage, type User as UserMessage } from '../../gen/identity/v1/identity_pb.js';

const STATUS: Readonly<Record<UserStatus, UserStatusMessage>> = {
  [UserStatus.Active]: UserStatusMessage.ACTIVE,
  [UserStatus.Disabled]: UserStatusMessage.DISABLED,
  [UserStatus.Deleted]: UserStatusMessage.DELETED,
};

/** The fields a caller may see; the password hash is not one of them. */
export function toUserMessage(user: User): UserMessage {
  return create(UserSchema, {
    id: user.id.value,
    email: user.email.value,
    firstName: user.firstName.value,
    lastName: user.lastName.value,
    status: STATUS[user.status],
    createdAt: timestampFromDate(user.createdAt),
    updatedAt: timestampFromDate(user.updatedAt),
  });
}
