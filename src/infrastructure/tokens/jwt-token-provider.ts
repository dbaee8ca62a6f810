import { performance } from 'node:perf_hooks';
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
import { SecondSighting } from './second-sighting.js';
import { SignatureLoad } from './signature-load.js';
import type { JwtSigner } from './jwt-signer.js';
import type { JwtVerifier, VerifiedJwt } from './jwt-verifier.js';

export interface JwtTokenProviderDeps {
  readonly keys: KeyRing;
  readonly signer: JwtSigner;
  readonly verifier: JwtVerifier;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Pick<Metrics, 'tokenVerifyFailures'>;
  /** Successful verifications remembered (by token, until exp); 0 disables the cache. */
  readonly cacheSize: number;
  readonly clockSkewSeconds: number;
}

/** What the cache keeps of a verified token: the answer itself, given out again as it is. */
interface CachedToken {
  readonly token: VerifiedToken;
  readonly kid: string;
  /** exp plus the clock skew, in ms: a hit after it verifies again (and fails as expired). */
  readonly usableUntilMs: number;
}

/**
 * Issues and verifies access tokens. A token verified on its second sighting is remembered until
 * it expires (SecondSighting: tokens checked once are not worth an entry), so repeated checks of
 * the same token skip the signature; a hit is still refused once the key
 * that signed it is no longer published. The cache answers only for the signature and claims:
 * revocation is checked after it, on every call (VerifyToken and its RevocationList), so a
 * cached token of a revoked session is refused all the same.
 *
 * Keyed by the token itself, not a digest: a SHA-256 per call was 5 % of a cached
 * VerifyToken's time (issue 16), and an exact key cannot collide. A hit returns the same
 * frozen VerifiedToken every time, so the transport can keep its encoded answer beside it.
 */
export class JwtTokenProvider implements TokenProvider {
  private readonly cache: LRUCache<string, CachedToken> | undefined;
  private readonly sightings: SecondSighting | undefined;
  private readonly signatureLoad = new SignatureLoad(() => performance.now());
  /** The token verifyNow() last left to verify(), whose check it counted already. */
  private handedOn: string | undefined;

  constructor(private readonly deps: JwtTokenProviderDeps) {
    // No TTL in the cache itself: every entry carries its own deadline, checked on each hit, and
    // an expired one waits for the LRU order to push it out. lru-cache's own TTL bookkeeping on
    // every get() was 2 % of a cached VerifyToken (issue 16).
    this.cache = deps.cacheSize > 0 ? new LRUCache({ max: deps.cacheSize }) : undefined;
    this.sightings = deps.cacheSize > 0 ? new SecondSighting(deps.cacheSize) : undefined;
  }

  issue(userId: UserId, sessionId?: SessionId): Promise<IssuedToken> {
    const now = this.deps.clock.now();
    const key = this.deps.keys.signingKey(now);
    if (key === undefined) throw new ServiceUnavailableError('the signing key');
    return this.deps.signer.sign(userId.value, key, now, sessionId?.value);
  }

  /**
   * The token remembered, or verified here while few checks arrive (SignatureLoad); undefined,
   * having counted the check, when its signature should go to the thread pool: verify() of the
   * same token then takes it there without counting it again.
   */
  verifyNow(token: string): VerifiedToken | undefined {
    if (token === this.handedOn) return undefined;
    const now = this.deps.clock.now();
    const remembered = this.cached(token, now);
    if (remembered !== undefined) return remembered;
    if (this.signatureLoad.toPool()) {
      this.handedOn = token;
      return undefined;
    }
    try {
      return this.remember(token, this.deps.verifier.verify(token, now));
    } catch (error) {
      return this.refused(error);
    }
  }

  async verify(token: string): Promise<VerifiedToken> {
    const known = this.verifyNow(token);
    if (known !== undefined) return known;
    this.handedOn = undefined;
    const now = this.deps.clock.now();
    return this.remember(token, await this.deps.verifier.verifyInPool(token, now).catch((error: unknown) => this.refused(error)));
  }

  private cached(token: string, now: Date): VerifiedToken | undefined {
    const cached = this.cache?.get(token);
    if (cached === undefined || now.getTime() >= cached.usableUntilMs || this.deps.keys.publishedKey(cached.kid, now) === undefined) return undefined;
    return cached.token;
  }

  private refused(error: unknown): never {
    if (error instanceof InvalidTokenError) {
      this.deps.metrics.tokenVerifyFailures.inc({ reason: error.reason });
      this.deps.logger.debug({ reason: error.reason }, 'token refused');
    }
    throw error;
  }

  /** The verified token without its kid, kept in the cache from its second sighting on. */
  private remember(token: string, { kid, ...verified }: VerifiedJwt): VerifiedToken {
    if (this.sightings?.seenBefore(token) !== true) return verified;
    const usableUntilMs = verified.expiresAt.getTime() + this.deps.clockSkewSeconds * 1000;
    // A copy as the key: the token may be a slice of a far larger string (Check's header value,
    // padded by its sender) that the cache would otherwise keep alive. Verified tokens are ASCII.
    const key = Buffer.from(token, 'latin1').toString('latin1');
    // The cache keeps a frozen copy, handed out from the next hit on; this call gets its own.
    this.cache?.set(key, { token: Object.freeze({ ...verified }), kid, usableUntilMs });
    return verified;
  }
}
