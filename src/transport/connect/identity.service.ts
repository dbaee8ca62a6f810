import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { Authenticate } from '../../application/use-cases/authenticate.use-case.js';
import type { BatchGetUsers } from '../../application/use-cases/batch-get-users.use-case.js';
import type { ChangePassword } from '../../application/use-cases/change-password.use-case.js';
import type { GetUser } from '../../application/use-cases/get-user.use-case.js';
import type { Logout } from '../../application/use-cases/logout.use-case.js';
import type { RefreshTokens } from '../../application/use-cases/refresh-token.use-case.js';
import type { RegisterUser } from '../../application/use-cases/register-user.use-case.js';
import type { VerifyToken } from '../../application/use-cases/verify-token.use-case.js';
import type {
  AuthenticateRequest,
  BatchGetUsersRequest,
  ChangePasswordRequest,
  GetUserRequest,
  IdentityService,
  LogoutRequest,
  RefreshTokenRequest,
  RegisterUserRequest,
  VerifyTokenRequest,
} from '../../gen/identity/v1/identity_pb.js';
import { kClientAddress, signalOf } from './request-context.js';
import { toTokenPair } from './token-pair.presenter.js';
import { toUserMessage } from './user.presenter.js';
import { toVerifyTokenResponse } from './verified-token.presenter.js';

export interface IdentityUseCases {
  readonly registerUser: RegisterUser;
  readonly authenticate: Authenticate;
  readonly verifyToken: VerifyToken;
  readonly refreshToken: RefreshTokens;
  readonly logout: Logout;
  readonly changePassword: ChangePassword;
  readonly getUser: GetUser;
  readonly batchGetUsers: BatchGetUsers;
}

/** identity.v1.IdentityService: parse the request, run the use case, present the result. */
export class IdentityServiceHandler implements ServiceImpl<typeof IdentityService> {
  constructor(private readonly useCases: IdentityUseCases) {}

  async registerUser(req: RegisterUserRequest, ctx: HandlerContext) {
    const user = await this.useCases.registerUser.execute({
      email: req.email,
      password: req.password,
      firstName: req.firstName,
      lastName: req.lastName,
      clientAddress: ctx.values.get(kClientAddress),
      signal: signalOf(ctx),
    });
    return { user: toUserMessage(user) };
  }

  async authenticate(req: AuthenticateRequest, ctx: HandlerContext) {
    const authenticated = await this.useCases.authenticate.execute({
      email: req.email,
      password: req.password,
      clientAddress: ctx.values.get(kClientAddress),
      signal: signalOf(ctx),
    });
    return { ...toTokenPair(authenticated), user: toUserMessage(authenticated.user) };
  }

  verifyToken(req: VerifyTokenRequest) {
    return this.verify(req.token);
  }

  /** VerifyToken's answer for a token (the fast path reads only the token of the request). */
  async verify(token: string) {
    return toVerifyTokenResponse(await this.useCases.verifyToken.execute(token));
  }

  /** verify's answer when it is known without waiting (see VerifyToken.executeNow), else undefined. */
  verifyNow(token: string) {
    const verified = this.useCases.verifyToken.executeNow(token);
    return verified === undefined ? undefined : toVerifyTokenResponse(verified);
  }

  async refreshToken(req: RefreshTokenRequest, ctx: HandlerContext) {
    const refreshed = await this.useCases.refreshToken.execute({
      refreshToken: req.refreshToken,
      clientAddress: ctx.values.get(kClientAddress),
      signal: signalOf(ctx),
    });
    return toTokenPair(refreshed);
  }

  async logout(req: LogoutRequest, ctx: HandlerContext) {
    await this.useCases.logout.execute({ refreshToken: req.refreshToken, clientAddress: ctx.values.get(kClientAddress), signal: signalOf(ctx) });
    return {};
  }

  async changePassword(req: ChangePasswordRequest, ctx: HandlerContext) {
    const user = await this.useCases.changePassword.execute({
      email: req.email,
      currentPassword: req.currentPassword,
      newPassword: req.newPassword,
      clientAddress: ctx.values.get(kClientAddress),
      signal: signalOf(ctx),
    });
    return { user: toUserMessage(user) };
  }

  async getUser(req: GetUserRequest) {
    return { user: toUserMessage(await this.useCases.getUser.execute(req.userId)) };
  }

  async batchGetUsers(req: BatchGetUsersRequest) {
    const { users, missingUserIds } = await this.useCases.batchGetUsers.execute(req.userIds);
    return { users: users.map(toUserMessage), missingUserIds: [...missingUserIds] };
  }
}
