import { InvalidArgumentError } from '../../domain/identity/identity.errors.js';
import type { TokenProvider, VerifiedToken } from '../../application/ports/token-provider.port.js';
import { isValidUnicode } from '../../domain/shared/text.js';
import type { RevocationList } from '../ports/revocation-list.port.js';

/**
 * Validates an access token; a bad token of any kind ends in InvalidTokenError. Revocation is
 * checked on every call after the signature and claims (cached or not), from memory.
 */
export class VerifyToken {
  constructor(
    private readonly tokens: TokenProvider,
    private readonly revocations: RevocationList,
  ) {}

  async execute(token: string): Promise<VerifiedToken> {
    // Bytes that were not UTF-8 on the wire are malformed input (INVALID_ARGUMENT), as for every string field.
    if (!isValidUnicode(token)) throw new InvalidArgumentError([{ field: 'token', description: 'must be valid UTF-8' }]);
    const verified = await this.tokens.verify(token);
    this.revocations.check(verified);
    return verified;
  }
}
