/**
 * Every failure the service expects carries a stable code. The transport maps codes to
 * status codes in one table; anything without a code is a bug and becomes INTERNAL.
 */
export const ErrorCode = {
  InvalidArgument: 'IDENTITY.INVALID_ARGUMENT',
  EmailTaken: 'IDENTITY.EMAIL_TAKEN',
  InvalidCredentials: 'IDENTITY.INVALID_CREDENTIALS',
  InvalidToken: 'IDENTITY.INVALID_TOKEN',
  TooManyAttempts: 'IDENTITY.TOO_MANY_ATTEMPTS',
  Overloaded: 'IDENTITY.OVERLOADED',
  Unavailable: 'IDENTITY.UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export abstract class IdentityError extends Error {
  abstract readonly code: ErrorCode;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
