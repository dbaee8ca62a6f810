import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { ServiceUnavailableError } from '../../application/application.errors.js';
import type { Clock } from '../../application/ports/clock.port.js';
import { InvalidTokenError } from '../../domain/identity/identity.errors.js';
import type { IssuedToken, TokenProvider, VerifiedToken } from '../../application/ports/token-provider.port.js';
import type { SessionId } from '../../domain/identity/value-objects/session-id.value-object.js';
import type { UserId } from '../../domain/identity/value-objects/user-id.value-object.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeyRing } from './key-ring.js';
import type { JwtSigner } from './jwt-signer.js';
import type { JwtVerifier, VerifiedJwt } from './jwt-verifier.js';

export interface JwtTokenProviderDeps {
  readonly keys: KeyRing;
  readonly signer: JwtSigner;
  readonly verifier: JwtVerifier;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, 'tokenVerifyFailures'>;
  /** Successful verifications remembered (by token digest, until exp); 0 disables the cache. */
  readonly cacheSize: number;
  readonly clockSkewSeconds: number;
}

/**
 * Issues and verifies access tokens. A token verified once is remembered under its SHA-256
 * until it expires, so repeated checks of the same token skip the signature; a hit is still
 * refused once the key that signed it is no longer published. The cache answers only for the
 * signature and claims: revocation is checked after it, on every call (VerifyToken and its
 * RevocationList), so a cached token of a revoked session is refused all the same.
 */
export class JwtTokenProvider implements TokenProvider {
  private readonly cache: LRUCache<string, VerifiedJwt> | undefined;

  constructor(private readonly deps: JwtTokenProviderDeps) {
    this.cache = deps.cacheSize > 0 ? new LRUCache({ max: deps.cacheSize, ttlAutopurge: false }) : undefined;
  }

  issue(userId: UserId, sessionId?: SessionId): Promise<IssuedToken> {
    const now = this.deps.clock.now();
    const key = this.deps.keys.signingKey(now);
    if (key === undefined) throw new ServiceUnavailableError('the signing key');
    return this.deps.signer.sign(userId.value, key, now, sessionId?.value);
  }

  // async only to fit the port: the work is synchronous, on purpose (see JwtVerifier).
  // eslint-disable-next-line @typescript-eslint/require-await
  async verify(token: string): Promise<VerifiedToken> {
    try {
      return this.verifySync(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) {
        this.deps.metrics.tokenVerifyFailures.inc({ reason: error.reason });
        this.deps.logger.debug({ reason: error.reason }, 'token refused');
      }
      throw error;
    }
  }

  private verifySync(token: string): VerifiedToken {
    const now = this.deps.clock.now();
    const digest = this.cache && createHash('sha256').update(token).digest('base64url');
    const cached = digest === undefined ? undefined : this.cache?.get(digest);
    if (cached !== undefined && this.deps.keys.publishedKey(cached.kid, now) !== undefined) {
      if (now.getTime() < cached.expiresAt.getTime() + this.deps.clockSkewSeconds * 1000) return strip(cached);
    }
    const verified = this.deps.verifier.verify(token, now);
    if (digest !== undefined) {
      const ttl = verified.expiresAt.getTime() + this.deps.clockSkewSeconds * 1000 - now.getTime();
      this.cache?.set(digest, verified, { ttl });
    }
    return strip(verified);
  }
}

const strip = ({ kid: _kid, ...token }: VerifiedJwt): VerifiedToken => token;
