import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { Authenticate } from '../../application/use-cases/authenticate.use-case.js';
import type { RegisterUser } from '../../application/use-cases/register-user.use-case.js';
import type { VerifyToken } from '../../application/use-cases/verify-token.use-case.js';
import type {
  AuthenticateRequest,
  IdentityService,
  RegisterUserRequest,
  VerifyTokenRequest,
} from '../../gen/identity/v1/identity_pb.js';
import { kClientAddress, signalOf } from './request-context.js';
import { toUserMessage } from './user.presenter.js';

export interface IdentityUseCases {
  readonly registerUser: RegisterUser;
  readonly authenticate: Authenticate;
  readonly verifyToken: VerifyToken;
}

/** identity.v1.IdentityService: parse the request, run the use case, present the result. */
export class IdentityServiceHandler implements Partial<ServiceImpl<typeof IdentityService>> {
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
    const { user, token } = await this.useCases.authenticate.execute({
      email: req.email,
      password: req.password,
      clientAddress: ctx.values.get(kClientAddress),
      signal: signalOf(ctx),
    });
    return {
      accessToken: token.token,
      tokenType: 'Bearer',
      expiresAt: timestampFromDate(token.expiresAt),
      user: toUserMessage(user),
    };
  }

  async verifyToken(req: VerifyTokenRequest) {
    const token = await this.useCases.verifyToken.execute(req.token);
    return {
      userId: token.userId,
      expiresAt: timestampFromDate(token.expiresAt),
      issuedAt: timestampFromDate(token.issuedAt),
      tokenId: token.tokenId,
    };
  }
}
