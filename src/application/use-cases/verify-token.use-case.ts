import type { TokenProvider, VerifiedToken } from '../../domain/identity/ports/token-provider.port.js';

/** Validates an access token; a bad token of any kind ends in InvalidTokenError. */
export class VerifyToken {
  constructor(private readonly tokens: TokenProvider) {}

  execute(token: string): Promise<VerifiedToken> {
    return this.tokens.verify(token);
  }
}
