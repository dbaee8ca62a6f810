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
    return this.executeNow(token) ?? this.checked(await this.tokens.verify(token));
  }

  /**
   * The same outcome as execute(), when it is known without waiting: a malformed argument, or a
   * token the provider can tell at once (TokenProvider.verifyNow: remembered, or its signature
   * checked on this thread), then checked for revocation like any other. Undefined when only
   * execute() can tell. The hot path answers such a token with no promise at all (issue 16).
   */
  executeNow(token: string): VerifiedToken | undefined {
    // Bytes that were not UTF-8 on the wire are malformed input (INVALID_ARGUMENT), as for every string field.
    if (!isValidUnicode(token)) throw new InvalidArgumentError([{ field: 'token', description: 'must be valid UTF-8' }]);
    const known = this.tokens.verifyNow?.(token);
    return known === undefined ? undefined : this.checked(known);
  }

  private checked(verified: VerifiedToken): VerifiedToken {
    this.revocations.check(verified);
    return verified;
  }
}
