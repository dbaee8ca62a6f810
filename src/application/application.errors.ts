import { CodedError } from '../domain/shared/coded-error.js';

/** Failures of running a use case rather than of the domain's rules: load and dependencies. */
export const ApplicationErrorCode = {
  Overloaded: 'IDENTITY.OVERLOADED',
  Unavailable: 'IDENTITY.UNAVAILABLE',
  CallerNotAllowed: 'IDENTITY.CALLER_NOT_ALLOWED',
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

/**
 * A caller of the management port with a valid client certificate whose identity (URI or DNS
 * SAN) is not in MANAGEMENT_ALLOWED_CALLERS. The message names neither the caller nor the list.
 */
export class CallerNotAllowedError extends ApplicationError {
  readonly code = ApplicationErrorCode.CallerNotAllowed;

  constructor() {
    super('the caller is not allowed to use this service');
  }
}
