import { InvalidArgumentError } from '../../domain/identity/identity.errors.js';
import type { TokenProvider, VerifiedToken } from '../../application/ports/token-provider.port.js';
import { isValidUnicode } from '../../domain/shared/text.js';

/** Validates an access token; a bad token of any kind ends in InvalidTokenError. */
export class VerifyToken {
  constructor(private readonly tokens: TokenProvider) {}

  execute(token: string): Promise<VerifiedToken> {
    // Bytes that were not UTF-8 on the wire are malformed input (INVALID_ARGUMENT), as for every string field.
    if (!isValidUnicode(token)) return Promise.reject(new InvalidArgumentError([{ field: 'token', description: 'must be valid UTF-8' }]));
    return this.tokens.verify(token);
  }
}
