import { ErrorCode, IdentityError } from '../shared/identity-error.js';

/** One rejected request field, reported to the caller as a google.rpc.BadRequest field violation. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

export class InvalidArgumentError extends IdentityError {
  readonly code = ErrorCode.InvalidArgument;

  constructor(readonly violations: readonly FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join('; '));
  }
}

export class UserAlreadyExistsError extends IdentityError {
  readonly code = ErrorCode.EmailTaken;

  constructor(options?: ErrorOptions) {
    super('a user with this email is already registered', options);
  }
}

/**
 * Unknown email, wrong password and disabled user all end here with one message, so the
 * caller cannot tell them apart.
 */
export class InvalidCredentialsError extends IdentityError {
  readonly code = ErrorCode.InvalidCredentials;

  constructor() {
    super('invalid email or password');
  }
}

/** Why a token was refused: a metric label and a log field, never sent to the caller. */
export const TokenFailureReason = {
  Malformed: 'malformed',
  TooLarge: 'too_large',
  Algorithm: 'algorithm',
  UnknownKey: 'unknown_key',
  Signature: 'signature',
  Expired: 'expired',
  NotYetValid: 'not_yet_valid',
  Issuer: 'issuer',
  Audience: 'audience',
  Claims: 'claims',
  /** Good signature and claims, but its session was revoked, its user disabled or deleted, or it predates tokens_valid_after. */
  Revoked: 'revoked',
} as const;
export type TokenFailureReason = (typeof TokenFailureReason)[keyof typeof TokenFailureReason];

export class InvalidTokenError extends IdentityError {
  readonly code = ErrorCode.InvalidToken;

  constructor(readonly reason: TokenFailureReason) {
    super('invalid token');
  }
}

export class TooManyAttemptsError extends IdentityError {
  readonly code = ErrorCode.TooManyAttempts;

  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed attempts, retry in ${retryAfterSeconds} s`);
  }
}

/**
 * A refresh token that is unknown, consumed (reuse: the session is revoked), of a revoked or
 * expired session, or of a disabled user: one message for all, so none can be told apart.
 */
export class InvalidRefreshTokenError extends IdentityError {
  readonly code = ErrorCode.InvalidRefreshToken;

  constructor() {
    super('invalid refresh token');
  }
}

/** No user has this id, or it was deleted. */
export class UserNotFoundError extends IdentityError {
  readonly code = ErrorCode.UserNotFound;

  constructor() {
    super('user not found');
  }
}
