import { CodedError } from '../domain/shared/coded-error.js';

/** Failures of running a use case rather than of the domain's rules: load and dependencies. */
export const ApplicationErrorCode = {
  Overloaded: 'IDENTITY.OVERLOADED',
  Unavailable: 'IDENTITY.UNAVAILABLE',
} as const;
export type ApplicationErrorCode = (typeof ApplicationErrorCode)[keyof typeof ApplicationErrorCode];

abstract class ApplicationError extends CodedError {
  abstract override readonly code: ApplicationErrorCode;
}

/** The password hashing queue is full: shed the request now rather than queue it for seconds. */
export class OverloadedError extends ApplicationError {
  readonly code = ApplicationErrorCode.Overloaded;

  constructor(options?: ErrorOptions) {
    super('the service is overloaded, retry later', options);
  }
}

/** A dependency (the database, the signing key) is not there; nothing was written. */
export class ServiceUnavailableError extends ApplicationError {
  readonly code = ApplicationErrorCode.Unavailable;

  constructor(what: string, options?: ErrorOptions) {
    super(`${what} is unavailable, retry later`, options);
  }
}
