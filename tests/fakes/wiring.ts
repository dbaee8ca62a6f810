import { Authenticate } from '../../src/application/use-cases/authenticate.use-case.js';
import { BatchGetUsers } from '../../src/application/use-cases/batch-get-users.use-case.js';
import { ChangePassword } from '../../src/application/use-cases/change-password.use-case.js';
import { DeleteUser } from '../../src/application/use-cases/delete-user.use-case.js';
import { DisableUser } from '../../src/application/use-cases/disable-user.use-case.js';
import { EnableUser } from '../../src/application/use-cases/enable-user.use-case.js';
import { ListSessions } from '../../src/application/use-cases/list-sessions.use-case.js';
import { ListUsers } from '../../src/application/use-cases/list-users.use-case.js';
import { RevokeUserSessions } from '../../src/application/use-cases/revoke-user-sessions.use-case.js';
import { SetPassword } from '../../src/application/use-cases/set-password.use-case.js';
import { UpdateUserProfile } from '../../src/application/use-cases/update-user-profile.use-case.js';
import { GetUser } from '../../src/application/use-cases/get-user.use-case.js';
import { Logout } from '../../src/application/use-cases/logout.use-case.js';
import { RefreshTokens } from '../../src/application/use-cases/refresh-token.use-case.js';
import { RegisterUser } from '../../src/application/use-cases/register-user.use-case.js';
import { VerifyToken } from '../../src/application/use-cases/verify-token.use-case.js';
import { PasswordPolicy } from '../../src/domain/identity/password-policy.js';
import { FakeAuditLog } from './audit-log.fake.js';
import { FakeClock } from './clock.fake.js';
import { FakeLoginThrottle } from './login-throttle.fake.js';
import { FakeOutbox } from './outbox.fake.js';
import { FakePasswordHasher } from './password-hasher.fake.js';
import { FakeRevocationList } from './revocation-list.fake.js';
import { FakeSessionRepository } from './session-repository.fake.js';
import { FakeTokenProvider } from './token-provider.fake.js';
import { FakeUnitOfWork } from './unit-of-work.fake.js';
import { FakeUserRepository } from './user-repository.fake.js';

/** The use cases wired as src/app/build-service.ts wires them, to fakes the test can inspect and steer. */
export function wireFakes() {
  const clock = new FakeClock();
  const users = new FakeUserRepository();
  const outbox = new FakeOutbox();
  const sessions = new FakeSessionRepository(new Map(), (id) => users.all.some((user) => user.id.equals(id) && user.isActive));
  const uow = new FakeUnitOfWork(users, outbox, sessions);
  const hasher = new FakePasswordHasher();
  const tokens = new FakeTokenProvider(clock);
  const throttle = new FakeLoginThrottle(clock);
  const audit = new FakeAuditLog();
  const revocations = new FakeRevocationList();
  const passwordPolicy = new PasswordPolicy({ minLength: 8, commonPasswords: new Set(['password1']) });
  const sessionPolicy = { idleSeconds: 86_400, maxSeconds: 30 * 86_400, reuseGraceSeconds: 10 };
  return {
    clock,
    users,
    outbox,
    sessions,
    uow,
    hasher,
    tokens,
    throttle,
    audit,
    revocations,
    useCases: {
      registerUser: new RegisterUser({ uow, users, hasher, passwordPolicy, clock, audit }),
      authenticate: new Authenticate({ uow, users, hasher, tokens, throttle, clock, audit, sessionPolicy }),
      verifyToken: new VerifyToken(tokens, revocations),
      refreshToken: new RefreshTokens({ uow, tokens, clock, audit, sessionPolicy, telemetry: { refreshed: () => undefined } }),
      logout: new Logout({ uow, clock, audit }),
      changePassword: new ChangePassword({ uow, users, hasher, throttle, passwordPolicy, clock, audit }),
      getUser: new GetUser(users),
      batchGetUsers: new BatchGetUsers(users),
    },
    management: {
      listUsers: new ListUsers(users),
      updateUserProfile: new UpdateUserProfile({ uow, clock }),
      setPassword: new SetPassword({ uow, users, hasher, passwordPolicy, clock }),
      disableUser: new DisableUser({ uow, clock }),
      enableUser: new EnableUser({ uow, clock }),
      deleteUser: new DeleteUser({ uow, clock }),
      listSessions: new ListSessions({ uow, users, clock }),
      revokeUserSessions: new RevokeUserSessions({ uow, clock }),
    },
  };
}

export type Fakes = ReturnType<typeof wireFakes>;
