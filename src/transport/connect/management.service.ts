import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { DeleteUser } from '../../application/use-cases/delete-user.use-case.js';
import type { DisableUser } from '../../application/use-cases/disable-user.use-case.js';
import type { EnableUser } from '../../application/use-cases/enable-user.use-case.js';
import type { ListSessions } from '../../application/use-cases/list-sessions.use-case.js';
import type { ListUsers } from '../../application/use-cases/list-users.use-case.js';
import type { RevokeUserSessions } from '../../application/use-cases/revoke-user-sessions.use-case.js';
import type { SetPassword } from '../../application/use-cases/set-password.use-case.js';
import type { UpdateUserProfile } from '../../application/use-cases/update-user-profile.use-case.js';
import type { Session } from '../../domain/identity/session.entity.js';
import { UserStatus } from '../../domain/identity/user-status.js';
import { UserStatus as UserStatusMessage } from '../../gen/identity/v1/identity_pb.js';
import type {
  DeleteUserRequest,
  DisableUserRequest,
  EnableUserRequest,
  ListSessionsRequest,
  ListUsersRequest,
  RevokeUserSessionsRequest,
  SetPasswordRequest,
  UpdateUserProfileRequest,
  UserManagementService,
} from '../../gen/identity/v1/user_management_pb.js';
import { signalOf } from './request-context.js';
import { toUserMessage } from './user.presenter.js';

export interface ManagementUseCases {
  readonly listUsers: ListUsers;
  readonly updateUserProfile: UpdateUserProfile;
  readonly setPassword: SetPassword;
  readonly disableUser: DisableUser;
  readonly enableUser: EnableUser;
  readonly deleteUser: DeleteUser;
  readonly listSessions: ListSessions;
  readonly revokeUserSessions: RevokeUserSessions;
}

const STATUS_FILTER: ReadonlyMap<number, UserStatus | undefined> = new Map([
  [UserStatusMessage.UNSPECIFIED, undefined],
  [UserStatusMessage.ACTIVE, UserStatus.Active],
  [UserStatusMessage.DISABLED, UserStatus.Disabled],
  [UserStatusMessage.DELETED, UserStatus.Deleted],
]);

/** An unknown enum number (proto3 enums are open) is named as such; the use case refuses it. */
const statusFilter = (status: number) => (STATUS_FILTER.has(status) ? STATUS_FILTER.get(status) : 'invalid');

const toSessionMessage = (session: Session) => ({
  id: session.id.value,
  userId: session.userId.value,
  createdAt: timestampFromDate(session.createdAt),
  lastRefreshedAt: timestampFromDate(session.lastRefreshedAt),
  // When it ends unless refreshed first: the idle end or the absolute one, whichever comes first.
  expiresAt: timestampFromDate(session.refreshExpiresAt),
  clientAddress: session.clientAddress,
});

/** identity.v1.UserManagementService (management port only): parse, run the use case, present. */
export class ManagementServiceHandler implements ServiceImpl<typeof UserManagementService> {
  constructor(private readonly useCases: ManagementUseCases) {}

  async listUsers(req: ListUsersRequest) {
    const page = await this.useCases.listUsers.execute({ pageSize: req.pageSize, pageToken: req.pageToken, status: statusFilter(req.status), emailPrefix: req.emailPrefix });
    return { users: page.users.map(toUserMessage), nextPageToken: page.nextPageToken };
  }

  async updateUserProfile(req: UpdateUserProfileRequest, ctx: HandlerContext) {
    const user = await this.useCases.updateUserProfile.execute({ userId: req.userId, firstName: req.firstName, lastName: req.lastName, signal: signalOf(ctx) });
    return { user: toUserMessage(user) };
  }

  async setPassword(req: SetPasswordRequest, ctx: HandlerContext) {
    return { user: toUserMessage(await this.useCases.setPassword.execute({ userId: req.userId, newPassword: req.newPassword, signal: signalOf(ctx) })) };
  }

  async disableUser(req: DisableUserRequest, ctx: HandlerContext) {
    return { user: toUserMessage(await this.useCases.disableUser.execute({ userId: req.userId, reason: req.reason, signal: signalOf(ctx) })) };
  }

  async enableUser(req: EnableUserRequest, ctx: HandlerContext) {
    return { user: toUserMessage(await this.useCases.enableUser.execute({ userId: req.userId, signal: signalOf(ctx) })) };
  }

  async deleteUser(req: DeleteUserRequest, ctx: HandlerContext) {
    await this.useCases.deleteUser.execute({ userId: req.userId, signal: signalOf(ctx) });
    return {};
  }

  async listSessions(req: ListSessionsRequest, ctx: HandlerContext) {
    const sessions = await this.useCases.listSessions.execute({ userId: req.userId, signal: signalOf(ctx) });
    return { sessions: sessions.map(toSessionMessage) };
  }

  async revokeUserSessions(req: RevokeUserSessionsRequest, ctx: HandlerContext) {
    return { revokedSessions: await this.useCases.revokeUserSessions.execute({ userId: req.userId, signal: signalOf(ctx) }) };
  }
}
