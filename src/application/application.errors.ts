import { ErrorCode, IdentityError } from '../domain/shared/identity-error.js';

/** The password hashing queue is full: shed the request now rather than queue it for seconds. */
export class OverloadedError extends IdentityError {
  readonly code = ErrorCode.Overloaded;

  constructor(options?: ErrorOptions) {
    super('the service is overloaded, retry later', options);
  }
}

/** A dependency (the database) did not answer; nothing was written. */
export class ServiceUnavailableError extends IdentityError {
  readonly code = ErrorCode.Unavailable;

  constructor(what: string, options?: ErrorOptions) {
    super(`${what} is unavailable, retry later`, options);
  }
}
