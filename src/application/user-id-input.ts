import { UserId } from '../domain/identity/value-objects/user-id.value-object.js';
import { err, ok, type Result } from '../domain/shared/result.js';

/** A user id as a request gives it: a UUID, in either case. */
export function parseUserId(raw: string): Result<UserId, string> {
  const lower = raw.toLowerCase();
  return UserId.isValid(lower) ? ok(UserId.fromTrusted(lower)) : err('must be a UUID');
}
