import { CodedError } from './coded-error.js';

/**
 * The domain's failures. Each carries a stable code; the transport maps codes to status
 * codes in one table, and anything without a mapped code is a bug and becomes INTERNAL.
 */
export const ErrorCode = {
  InvalidArgument: 'IDENTITY.INVALID_ARGUMENT',
  EmailTaken: 'IDENTITY.EMAIL_TAKEN',
  InvalidCredentials: 'IDENTITY.INVALID_CREDENTIALS',
  InvalidToken: 'IDENTITY.INVALID_TOKEN',
  InvalidRefreshToken: 'IDENTITY.INVALID_REFRESH_TOKEN',
  UserNotFound: 'IDENTITY.USER_NOT_FOUND',
  TooManyAttempts: 'IDENTITY.TOO_MANY_ATTEMPTS',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export abstract class IdentityError extends CodedError {
  abstract override readonly code: ErrorCode;
}
