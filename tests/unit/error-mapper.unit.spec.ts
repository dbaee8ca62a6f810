import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { ApplicationErrorCode, OverloadedError, ServiceUnavailableError, CallerNotAllowedError } from '../../src/application/application.errors.js';
import {
  InvalidArgumentError,
  InvalidCredentialsError,
  InvalidRefreshTokenError,
  InvalidTokenError,
  TokenFailureReason,
  TooManyAttemptsError,
  UserAlreadyExistsError,
  UserNotFoundError,
} from '../../src/domain/identity/identity.errors.js';
import type { CodedError } from '../../src/domain/shared/coded-error.js';
import { ErrorCode } from '../../src/domain/shared/identity-error.js';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { maskEmail } from '../../src/infrastructure/observability/logger.js';
import { RotationPendingError } from '../../src/infrastructure/tokens/key-manager.js';
import { STATUS_BY_ERROR_CODE, toConnectError } from '../../src/transport/connect/error-mapper.js';

/** One instance of every error the service expects, as the use cases throw them. */
const expectedErrors: CodedError[] = [
  new InvalidArgumentError([{ field: 'email', description: 'must contain exactly one @' }]),
  new UserAlreadyExistsError(),
  new InvalidCredentialsError(),
  new InvalidTokenError(TokenFailureReason.Signature),
  new InvalidRefreshTokenError(),
  new UserNotFoundError(),
  new TooManyAttemptsError(8),
  new OverloadedError(),
  new ServiceUnavailableError('the database'),
  new CallerNotAllowedError(),
];

describe('STATUS_BY_ERROR_CODE', () => {
  it.each([...Object.values(ErrorCode), ...Object.values(ApplicationErrorCode)])('%s has a status that is not INTERNAL or UNKNOWN', (code) => {
    const status = STATUS_BY_ERROR_CODE[code];
    expect(status).toBeTypeOf('number');
    expect(Object.values(Code)).toContain(status);
    expect(status).not.toBe(Code.Internal);
    expect(status).not.toBe(Code.Unknown);
  });

  it('maps each case as the contract\'s table says', () => {
    expect(STATUS_BY_ERROR_CODE).toEqual({
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
    });
  });

  it('has an error class for every code (nothing in the table is dead)', () => {
    expect(new Set(expectedErrors.map((error) => error.code))).toEqual(new Set([...Object.values(ErrorCode), ...Object.values(ApplicationErrorCode)]));
  });
});

describe('toConnectError', () => {
  it.each(expectedErrors.map((error) => [error.name, error] as const))('%s keeps its message and status and gains ErrorInfo', (_name, error) => {
    const mapped = toConnectError(error);
    expect(mapped.code).toBe(STATUS_BY_ERROR_CODE[error.code as keyof typeof STATUS_BY_ERROR_CODE]);
    expect(mapped.rawMessage).toBe(error.message);
    expect(mapped.cause).toBe(error);
    expect(mapped.findDetails(ErrorInfoSchema)).toEqual([expect.objectContaining({ reason: error.code, domain: 'identity.v1' })]);
  });

  it('InvalidArgumentError carries a google.rpc.BadRequest with every field violation', () => {
    const error = new InvalidArgumentError([
      { field: 'email', description: 'must contain exactly one @' },
      { field: 'first_name', description: 'is required' },
    ]);
    const mapped = toConnectError(error);
    expect(mapped.code).toBe(Code.InvalidArgument);
    expect(mapped.rawMessage).toContain('email');
    expect(mapped.rawMessage).toContain('first_name');
    const [badRequest, ...more] = mapped.findDetails(BadRequestSchema);
    expect(more).toEqual([]);
    expect(badRequest?.fieldViolations.map(({ field, description }) => ({ field, description }))).toEqual([
      { field: 'email', description: 'must contain exactly one @' },
      { field: 'first_name', description: 'is required' },
    ]);
    expect(mapped.findDetails(RetryInfoSchema)).toEqual([]);
  });

  it.each([1, 8, 900])('TooManyAttemptsError(%i) carries RetryInfo with that delay and says it in the message', (seconds) => {
    const mapped = toConnectError(new TooManyAttemptsError(seconds));
    expect(mapped.code).toBe(Code.ResourceExhausted);
    const [retry] = mapped.findDetails(RetryInfoSchema);
    expect(retry?.retryDelay?.seconds).toBe(BigInt(seconds));
    expect(mapped.rawMessage).toContain(`${seconds} s`);
    expect(mapped.findDetails(BadRequestSchema)).toEqual([]);
  });

  it('InvalidTokenError tells the caller nothing about why', () => {
    const messages = Object.values(TokenFailureReason).map((reason) => toConnectError(new InvalidTokenError(reason)));
    for (const mapped of messages) {
      expect(mapped.code).toBe(Code.Unauthenticated);
      expect(mapped.rawMessage).toBe(messages[0]!.rawMessage);
      expect(mapped.findDetails(ErrorInfoSchema)).toEqual(messages[0]!.findDetails(ErrorInfoSchema));
      expect(mapped.findDetails(BadRequestSchema)).toEqual([]);
    }
    const signature = toConnectError(new InvalidTokenError(TokenFailureReason.Signature));
    expect(signature.details).toHaveLength(1);
    const [info] = signature.findDetails(ErrorInfoSchema);
    expect(info?.reason).toBe(ErrorCode.InvalidToken);
    expect(info?.metadata).toEqual({});
    expect(signature.message).not.toMatch(/signature|expired|kid/i);
  });

  it.each([
    ['an Error', new Error('connection to db.internal as app with password hunter2 failed')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'hunter2')")],
    ['a thrown string', 'hunter2 leaked in a string'],
    ['a plain object', { message: 'hunter2 in an object', code: '23505' }],
    ['an error with a code-like field', Object.assign(new Error('hunter2'), { code: ErrorCode.InvalidArgument })],
  ])('anything else (%s) becomes INTERNAL with a generic message, the original kept only as cause', (_label, thrown) => {
    const mapped = toConnectError(thrown);
    expect(mapped.code).toBe(Code.Internal);
    expect(mapped.message).not.toContain('hunter2');
    expect(mapped.rawMessage).toBe('internal error');
    expect(mapped.details).toEqual([]);
    expect(mapped.cause).toBe(thrown);
  });

  it('undefined and null become INTERNAL too', () => {
    expect(toConnectError(undefined).code).toBe(Code.Internal);
    expect(toConnectError(null).code).toBe(Code.Internal);
  });

  it('a ConnectError passes through unchanged', () => {
    const original = new ConnectError('message too large', Code.ResourceExhausted);
    expect(toConnectError(original)).toBe(original);
    const deadline = new ConnectError('deadline exceeded', Code.DeadlineExceeded);
    expect(toConnectError(deadline)).toBe(deadline);
  });

  it('unknown email, wrong password and disabled user are indistinguishable', () => {
    const [a, b] = [toConnectError(new InvalidCredentialsError()), toConnectError(new InvalidCredentialsError())];
    expect(a.code).toBe(b.code);
    expect(a.rawMessage).toBe(b.rawMessage);
    expect(a.findDetails(ErrorInfoSchema)).toEqual(b.findDetails(ErrorInfoSchema));
    expect(a.rawMessage).not.toMatch(/unknown|disabled|not found/i);
  });
});

describe('errors that must never reach a caller', () => {
  it('a coded error outside the table (a start-up error) is INTERNAL with the generic message', () => {
    const error = new RotationPendingError('kid-1', new Date(0));
    expect(error.name).toBe('RotationPendingError');
    const mapped = toConnectError(error);
    expect(mapped.code).toBe(Code.Internal);
    expect(mapped.rawMessage).toBe('internal error');
    expect(mapped.cause).toBe(error);
  });
});

describe('maskEmail', () => {
  it('keeps the first character and the domain', () => {
    expect(maskEmail('john@example.com')).toBe('j***@example.com');
    expect(maskEmail('Ann.Lee@Example.COM')).toBe('A***@Example.COM');
  });

  it('hides the rest of the local part whatever its length', () => {
    const masked = maskEmail('averyveryverylonglocalpart@x.io');
    expect(masked).not.toContain('veryvery');
    // Not even the length shows: a long and a short local part mask the same.
    expect(masked).toBe(maskEmail('ab@x.io'));
    expect(maskEmail('a@x.io')).toBe('a***@x.io');
  });

  it('keeps a whole first character, not half of a surrogate pair', () => {
    const masked = maskEmail('😀smile@x.io');
    expect(masked).toBe('😀***@x.io');
    expect(masked.isWellFormed()).toBe(true);
  });

  it('uses the last @ for input that was never a valid address', () => {
    const masked = maskEmail('a@b@c.io');
    expect(masked).toBe('a***@c.io');
    expect(masked).not.toContain('b@');
  });

  it.each(['', 'no-at-sign', '@example.com'])('masks %j entirely when there is no local part to keep', (value) => {
    expect(maskEmail(value)).toBe('***');
  });
});
