import { InvalidCredentialsError } from '../../domain/identity/identity.errors.js';
import type { PasswordHasher } from '../../application/ports/password-hasher.port.js';
import type { IssuedToken, TokenProvider } from '../../application/ports/token-provider.port.js';
import type { UserRepository } from '../../application/ports/user.repository.port.js';
import { Session, type SessionPolicy } from '../../domain/identity/session.entity.js';
import type { User } from '../../domain/identity/user.entity.js';
import type { RefreshToken } from '../../domain/identity/value-objects/refresh-token.value-object.js';
import { PlainPassword } from '../../domain/identity/value-objects/plain-password.value-object.js';
import { OverloadedError } from '../application.errors.js';
import { CredentialCheck, parseLoginEmail } from '../credential-check.js';
import { requireValid } from '../field-validation.js';
import type { AuditLog } from '../ports/audit-log.port.js';
import type { Clock } from '../ports/clock.port.js';
import type { LoginThrottle } from '../ports/login-throttle.port.js';
import type { UnitOfWork } from '../ports/unit-of-work.port.js';

export interface AuthenticateCommand {
  readonly email: string;
  readonly password: string;
  readonly clientAddress: string;
  /** Aborted when the caller's deadline passes. */
  readonly signal?: AbortSignal;
}

export interface AuthenticateDeps {
  readonly uow: UnitOfWork;
  readonly users: UserRepository;
  readonly hasher: PasswordHasher;
  readonly tokens: TokenProvider;
  readonly throttle: LoginThrottle;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly sessionPolicy: SessionPolicy;
}

export interface Authenticated {
  readonly user: User;
  readonly token: IssuedToken;
  readonly session: Session;
  readonly refreshToken: RefreshToken;
}

/**
 * Checks an email and password, opens a session and issues an access token (claim sid) and
 * the session's first refresh token. Unknown email, wrong password and disabled user take
 * the same path (CredentialCheck) and end in the same error.
 */
export class Authenticate {
  private readonly credentials: CredentialCheck;

  constructor(private readonly deps: AuthenticateDeps) {
    this.credentials = new CredentialCheck(deps);
  }

  async execute(command: AuthenticateCommand): Promise<Authenticated> {
    const input = requireValid({ email: parseLoginEmail(command.email), password: PlainPassword.parse(command.password) });
    const { clientAddress, signal } = command;
    const entry = { action: 'login', clientAddress, email: input.email } as const;
    const user = await this.credentials.check({ emailKey: input.email, password: input.password, clientAddress, action: 'login', signal });
    const current = await this.upgradeHash(user, input.password, signal);
    const opened = await this.openSession(current, clientAddress, signal);
    if (opened === undefined) {
      this.deps.audit.record({ ...entry, outcome: 'failure', userId: current.id.value });
      throw new InvalidCredentialsError();
    }
    this.deps.audit.record({ ...entry, outcome: 'success', userId: current.id.value });
    return { user: current, ...opened };
  }

  /**
   * The session is written only while its user is still active, in one statement that
   * share-locks the user's row (SessionRepository.addIfUserActive): a disable or delete
   * committed meanwhile is seen (no session), and one still running waits for this commit and
   * then revokes the session opened. The token is signed first, outside the transaction: it
   * needs only the session's id, and a transaction should not wait on the signer.
   */
  private async openSession(user: User, clientAddress: string, signal?: AbortSignal) {
    const { uow, clock, tokens, sessionPolicy } = this.deps;
    const { session, refreshToken } = Session.open(user.id, clientAddress, clock.now(), sessionPolicy);
    const token = await tokens.issue(user.id, session.id);
    const added = await uow.run((scope) => scope.sessions.addIfUserActive(session), signal);
    return added ? { session, refreshToken, token } : undefined;
  }

  /**
   * A hash made at a lower cost than configured is replaced while the password is at hand.
   * Best effort: the login already succeeded, so a busy hasher only postpones the upgrade to a
   * later login, and a user changed meanwhile (disabled, say) is left as it now is.
   */
  private async upgradeHash(user: User, password: PlainPassword, signal?: AbortSignal): Promise<User> {
    const { hasher, uow, clock } = this.deps;
    if (!hasher.needsRehash(user.passwordHash)) return user;
    try {
      const updated = user.withPasswordHash(await hasher.hash(password, signal), clock.now());
      const written = await uow.run((scope) => scope.users.update(updated, user.updatedAt), signal);
      return written ? updated : user;
    } catch (error) {
      if (error instanceof OverloadedError) return user;
      throw error;
    }
  }
}
