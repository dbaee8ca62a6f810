import { Code, ConnectError } from '@connectrpc/connect';
import { ApplicationErrorCode } from '../../application/application.errors.js';
import { CodedError } from '../../domain/shared/coded-error.js';
import { ErrorCode } from '../../domain/shared/identity-error.js';
import { InvalidArgumentError, TokenFailureReason, TooManyAttemptsError } from '../../domain/identity/identity.errors.js';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from '../../gen/google/rpc/error_details_pb.js';

/** The one table from the service's error codes to gRPC/Connect status codes. */
export const STATUS_BY_ERROR_CODE: Readonly<Record<ErrorCode | ApplicationErrorCode, Code>> = {
  [ErrorCode.InvalidArgument]: Code.InvalidArgument,
  [ErrorCode.EmailTaken]: Code.AlreadyExists,
  [ErrorCode.InvalidCredentials]: Code.Unauthenticated,
  [ErrorCode.InvalidToken]: Code.Unauthenticated,
  [ErrorCode.InvalidRefreshToken]: Code.Unauthenticated,
  [ErrorCode.UserNotFound]: Code.NotFound,
  [ErrorCode.TooManyAttempts]: Code.ResourceExhausted,
  [ApplicationErrorCode.Overloaded]: Code.ResourceExhausted,
  [ApplicationErrorCode.Unavailable]: Code.Unavailable,
  [ApplicationErrorCode.CallerNotAllowed]: Code.PermissionDenied,
};

const ERROR_DOMAIN = 'identity.v1';

type Detail = ConstructorParameters<typeof ConnectError>[3];

/**
 * Turns anything a handler threw into what the caller sees. Expected failures keep their
 * message and gain google.rpc details; anything else is a bug and becomes INTERNAL with a
 * generic message, the original kept as `cause` for the log only.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof CodedError) {
    const status = statusOf(error.code);
    if (status !== undefined) return new ConnectError(error.message, status, undefined, detailsOf(error), error);
  }
  return new ConnectError('internal error', Code.Internal, undefined, undefined, error);
}

/** A code outside the table (a start-up error, say) has no business reaching a caller: INTERNAL. */
function statusOf(code: string): Code | undefined {
  return Object.hasOwn(STATUS_BY_ERROR_CODE, code) ? STATUS_BY_ERROR_CODE[code as keyof typeof STATUS_BY_ERROR_CODE] : undefined;
}

function detailsOf(error: CodedError): Detail {
  const details: NonNullable<Detail> = [{ desc: ErrorInfoSchema, value: { reason: error.code, domain: ERROR_DOMAIN } }];
  if (error instanceof InvalidArgumentError) {
    details.push({ desc: BadRequestSchema, value: { fieldViolations: error.violations.map((v) => ({ ...v })) } });
  }
  if (error instanceof TooManyAttemptsError) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(error.retryAfterSeconds) } } });
  }
  return details;
}

/**
 * How an Envoy ext_authz Check answers a failure of VerifyToken. Check never fails at the
 * gRPC level for an expected fault: a bad token is a denial (401), a service that cannot
 * decide now is unavailable (503). `uncounted` is the token_verify_failures_total reason of a
 * refusal VerifyToken did not count itself (input it refused before verifying). Undefined: a
 * bug, which stays INTERNAL.
 */
export interface CheckFailure {
  readonly result: 'denied' | 'unavailable';
  readonly uncounted?: TokenFailureReason;
}

export function toCheckFailure(error: unknown): CheckFailure | undefined {
  if (error instanceof InvalidArgumentError) return { result: 'denied', uncounted: TokenFailureReason.Malformed };
  if (!(error instanceof CodedError)) return undefined;
  const code = statusOf(error.code);
  if (code === Code.Unauthenticated) return { result: 'denied' };
  if (code === Code.Unavailable || code === Code.ResourceExhausted) return { result: 'unavailable' };
  return undefined;
}
