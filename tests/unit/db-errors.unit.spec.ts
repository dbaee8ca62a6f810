import { describe, expect, it } from 'vitest';
import { ServiceUnavailableError } from '../../src/application/application.errors.js';
import { isDatabaseUnavailable, isUniqueViolation, withDbErrors } from '../../src/infrastructure/db/db-errors.js';

/** An error shaped like the ones pg, PGlite and Node's sockets throw. */
const dbError = (code: string, extra: Record<string, unknown> = {}, message = `database error ${code}`) =>
  Object.assign(new Error(message), { code, ...extra });

describe('isUniqueViolation', () => {
  it('is true for SQLSTATE 23505', () => {
    expect(isUniqueViolation(dbError('23505'))).toBe(true);
    expect(isUniqueViolation({ code: '23505' })).toBe(true);
  });

  it('checks the constraint when one is named', () => {
    const error = dbError('23505', { constraint: 'users_email_key_unique' });
    expect(isUniqueViolation(error, 'users_email_key_unique')).toBe(true);
    expect(isUniqueViolation(error, 'outbox_event_id_unique')).toBe(false);
    expect(isUniqueViolation(dbError('23505'), 'users_email_key_unique')).toBe(false);
  });

  it.each([
    ['a foreign key violation', dbError('23503')],
    ['a not-null violation', dbError('23502')],
    ['a check violation', dbError('23514')],
    ['a connection failure', dbError('ECONNREFUSED')],
    ['a numeric code', { code: 23505 }],
    ['an error without a code', new Error('duplicate key value violates unique constraint')],
    ['null', null],
    ['undefined', undefined],
    ['a string', '23505'],
  ])('is false for %s', (_label, error) => {
    expect(isUniqueViolation(error)).toBe(false);
  });
});

describe('isDatabaseUnavailable', () => {
  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'])('is true for the socket error %s', (code) => {
    expect(isDatabaseUnavailable(dbError(code))).toBe(true);
  });

  it.each([
    ['08000', 'connection exception'],
    ['08001', 'cannot connect now'],
    ['08003', 'connection does not exist'],
    ['08006', 'connection failure'],
    ['08P01', 'protocol violation'],
    ['57P01', 'admin shutdown'],
    ['57P02', 'crash shutdown'],
    ['57P03', 'cannot connect now (starting up)'],
    ['53300', 'too many connections'],
    ['53100', 'disk full'],
    ['53200', 'out of memory'],
    ['57014', 'statement timeout or cancel'],
    ['25006', 'read-only transaction (a standby after failover)'],
    ['40001', 'serialization failure'],
    ['40P01', 'deadlock detected'],
    ['55P03', 'lock not available'],
    ['3D000', 'database does not exist'],
    ['28P01', 'password authentication failed'],
  ])('is true for SQLSTATE %s (%s)', (code) => {
    expect(isDatabaseUnavailable(dbError(code))).toBe(true);
  });

  it.each([
    ['Connection terminated unexpectedly'],
    ['Connection terminated due to connection timeout'],
    ['Client has encountered a connection error and is not queryable'],
    ['connection is closed'],
  ])('is true for the driver message %j', (message) => {
    expect(isDatabaseUnavailable(new Error(message))).toBe(true);
  });

  it('is true for a database closed to connections (55000 at connect, e.g. ALLOW_CONNECTIONS false)', () => {
    expect(isDatabaseUnavailable(dbError('55000', {}, 'database "identity" is not currently accepting connections'))).toBe(true);
  });

  it('is true for a pool acquire timeout (KnexTimeoutError)', () => {
    const timeout = Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' });
    expect(isDatabaseUnavailable(timeout)).toBe(true);
  });

  it('is true for a dual-stack connect failure (AggregateError of socket errors)', () => {
    const aggregate = new AggregateError([dbError('ECONNREFUSED', { address: '::1' }), dbError('ECONNREFUSED', { address: '127.0.0.1' })], '');
    expect(isDatabaseUnavailable(aggregate)).toBe(true);
  });

  it.each([
    ['a unique violation', dbError('23505')],
    ['a syntax error', dbError('42601')],
    ['an undefined table', dbError('42P01')],
    ['SQLSTATE 57P04', dbError('57P04')],
    ['another 55000 (a bug, not an outage)', dbError('55000', {}, 'currval of sequence "outbox_id_seq" is not yet defined in this session')],
    ['a code that merely contains 08', dbError('X08006')],
    ['a plain error', new Error('something else')],
    ['an AggregateError of ordinary errors', new AggregateError([new Error('a'), dbError('23505')])],
    ['a socket-looking plain object (not an Error)', { code: 'ECONNREFUSED', message: 'Connection terminated' }],
    ['null', null],
    ['a string', 'ECONNREFUSED'],
  ])('is false for %s', (_label, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('withDbErrors', () => {
  it('returns the call\'s value', async () => {
    await expect(withDbErrors(() => Promise.resolve(42))).resolves.toBe(42);
  });

  it('turns "the database is down" into ServiceUnavailableError, keeping the cause', async () => {
    const down = dbError('ECONNREFUSED');
    const error = await withDbErrors(() => Promise.reject(down)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as Error).cause).toBe(down);
  });

  it('lets every other error through unchanged', async () => {
    const unique = dbError('23505');
    await expect(withDbErrors(() => Promise.reject(unique))).rejects.toBe(unique);
  });
});
