import { UserStatus } from '../domain/identity/user-status.js';
import { UserId } from '../domain/identity/value-objects/user-id.value-object.js';
import { emailKey } from '../domain/identity/value-objects/email.value-object.js';
import { err, ok, type Result } from '../domain/shared/result.js';
import { hasControlCharacter, isValidUnicode, utf8Length } from '../domain/shared/text.js';

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 100;
const MAX_PREFIX_BYTES = 254;
/** A token is a few dozen bytes; anything much longer was not made here. */
const MAX_TOKEN_LENGTH = 1_024;

/** Where the next page starts, and the filters it was made under (a token is valid only with them). */
export interface PageCursor {
  readonly afterId: string;
  readonly status: UserStatus | undefined;
  readonly emailKeyPrefix: string;
}

export function parsePageSize(size: number): Result<number, string> {
  if (size === 0) return ok(DEFAULT_PAGE_SIZE);
  return Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_SIZE ? ok(size) : err(`must be 1 to ${MAX_PAGE_SIZE} (0: ${DEFAULT_PAGE_SIZE})`);
}

/** An email prefix as keys are stored (NFC, lower-case): matched case-insensitively. */
export function parseEmailPrefix(raw: string): Result<string, string> {
  if (!isValidUnicode(raw)) return err('must be valid UTF-8');
  if (hasControlCharacter(raw)) return err('must not contain control characters');
  if (utf8Length(raw) > MAX_PREFIX_BYTES) return err(`must be at most ${MAX_PREFIX_BYTES} bytes`);
  return ok(emailKey(raw));
}

/**
 * The opaque next_page_token: base64url of a small JSON object. It is decoded and checked
 * field by field (the id must be a UUID, the filters those of the request) and only its id is
 * used, as a bound parameter: nothing of it reaches SQL as text.
 */
export const pageToken = {
  encode(cursor: PageCursor): string {
    return Buffer.from(JSON.stringify({ v: 1, a: cursor.afterId, s: cursor.status ?? '', p: cursor.emailKeyPrefix })).toString('base64url');
  },

  decode(token: string, filters: Omit<PageCursor, 'afterId'>): Result<string | undefined, string> {
    if (token === '') return ok(undefined);
    const invalid = err('is not a page token of this listing');
    if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) return invalid;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    } catch {
      return invalid;
    }
    if (typeof parsed !== 'object' || parsed === null) return invalid;
    const { v, a, s, p } = parsed as Record<string, unknown>;
    if (v !== 1 || typeof a !== 'string' || !UserId.isValid(a)) return invalid;
    if (s !== (filters.status ?? '') || p !== filters.emailKeyPrefix) return err('was made for other filters (status, email_prefix)');
    return ok(a);
  },
};

/** The statuses ListUsers filters on; deleted users are never listed. */
export function parseStatusFilter(status: UserStatus | undefined | 'invalid'): Result<UserStatus | undefined, string> {
  if (status === 'invalid' || status === UserStatus.Deleted) return err('must be ACTIVE, DISABLED or unspecified');
  return ok(status);
}
