import { RefreshToken } from '../domain/identity/value-objects/refresh-token.value-object.js';
import { err, ok, type Result } from '../domain/shared/result.js';
import { isValidUnicode } from '../domain/shared/text.js';

/**
 * The refresh_token field of RefreshToken and Logout: present and valid UTF-8, else
 * INVALID_ARGUMENT; a string that cannot be a token of ours parses to undefined (unknown).
 */
export function parseRefreshToken(raw: string): Result<RefreshToken | undefined, string> {
  if (!isValidUnicode(raw)) return err('must be valid UTF-8');
  if (raw.length === 0) return err('is required');
  return ok(RefreshToken.presented(raw));
}
