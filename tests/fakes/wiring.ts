import { Authenticate } from '../../src/application/use-cases/authenticate.use-case.js';
import { RegisterUser } from '../../src/application/use-cases/register-user.use-case.js';
import { VerifyToken } from '../../src/application/use-cases/verify-token.use-case.js';
import { PasswordPolicy } from '../../src/domain/identity/password-policy.js';
import { FakeAuditLog } from './audit-log.fake.js';
import { FakeClock } from './clock.fake.js';
import { FakeLoginThrottle } from './login-throttle.fake.js';
import { FakeOutbox } from './outbox.fake.js';
import { FakePasswordHasher } from './password-hasher.fake.js';
import { FakeTokenProvider } from './token-provider.fake.js';
import { FakeUnitOfWork } from './unit-of-work.fake.js';
import { FakeUserRepository } from './user-repository.fake.js';

/** The three use cases wired as main.ts wires them, to fakes the test can inspect and steer. */
export function wireFakes() {
  const clock = new FakeClock();
  const users = new FakeUserRepository();
  const outbox = new FakeOutbox();
  const uow = new FakeUnitOfWork(users, outbox);
  const hasher = new FakePasswordHasher();
  const tokens = new FakeTokenProvider(clock);
  const throttle = new FakeLoginThrottle(clock);
  const audit = new FakeAuditLog();
  const passwordPolicy = new PasswordPolicy({ minLength: 8, commonPasswords: new Set(['password1']) });
  return {
    clock,
    users,
    outbox,
    uow,
    hasher,
    tokens,
    throttle,
    audit,
    useCases: {
      registerUser: new RegisterUser({ uow, users, hasher, passwordPolicy, clock, audit }),
      authenticate: new Authenticate({ uow, users, hasher, tokens, throttle, clock, audit }),
      verifyToken: new VerifyToken(tokens),
    },
  };
}

export type Fakes = ReturnType<typeof wireFakes>;
