import { ServiceUnavailableError } from '../../application/application.errors.js';

const UNIQUE_VIOLATION = '23505';

/** Socket failures seen while connecting to or talking with the database. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

/**
 * SQLSTATEs that mean the server cannot serve us right now, so a retry (here or on another
 * replica) may succeed: class 08 "connection exception"; 57P01-03 shutdown and start-up;
 * 57014 statement timeout; class 53 insufficient resources (disk, memory, connections);
 * 25006 read-only transaction (a standby after failover); 40001/40P01 serialization failure
 * and deadlock; 55P03 lock not available; 3D000 (the database is gone) and class 28
 * (credentials refused) are outages of the deployment, not bugs.
 */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|57014|53...|25006|40001|40P01|55P03|3D000|28...)$/;

const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

export const isUniqueViolation = (error: unknown, constraint?: string): boolean =>
  sqlState(error) === UNIQUE_VIOLATION &&
  (constraint === undefined || (error as { constraint?: string }).constraint === constraint);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'KnexTimeoutError') return true; // no pooled connection within the acquire timeout
  if (/Connection terminated|connection is closed|Client has encountered a connection error/i.test(error.message)) return true;
  const code = sqlState(error);
  if (code !== undefined && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
  // 55000 is mostly a bug of ours, except when an operator closed the database to connections.
  if (code === '55000' && /not currently accepting connections/.test(error.message)) return true;
  // AggregateError from a dual-stack connect attempt carries the socket errors inside.
  return error instanceof AggregateError && error.errors.some(isDatabaseUnavailable);
}

/** Runs a database call and turns "the database is down" into the application's typed error. */
export async function withDbErrors<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw new ServiceUnavailableError('the database', { cause: error });
    throw error;
  }
}
