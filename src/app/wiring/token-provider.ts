import type { Logger } from 'pino';
import type { Clock } from '../../application/ports/clock.port.js';
import type { Config } from '../../infrastructure/config/load-config.js';
import type { Metrics } from '../../infrastructure/observability/metrics.js';
import { JwtSigner } from '../../infrastructure/tokens/jwt-signer.js';
import { JwtTokenProvider } from '../../infrastructure/tokens/jwt-token-provider.js';
import { JwtVerifier } from '../../infrastructure/tokens/jwt-verifier.js';
import type { KeyRing } from '../../infrastructure/tokens/key-ring.js';

/** Signs with the ring's active key; verifies against its published keys, behind a cache. */
export function tokenProvider(config: Config, keys: KeyRing, clock: Clock, logger: Logger, metrics: Metrics): JwtTokenProvider {
  return new JwtTokenProvider({
    keys,
    clock,
    logger,
    metrics,
    cacheSize: config.TOKEN_CACHE_SIZE,
    clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
    signer: new JwtSigner({ issuer: config.TOKEN_ISSUER, audience: config.TOKEN_AUDIENCE, ttlSeconds: config.TOKEN_TTL_SECONDS }),
    verifier: new JwtVerifier({
      algorithms: config.TOKEN_ALGORITHMS,
      issuer: config.TOKEN_ISSUER,
      audience: config.TOKEN_AUDIENCE,
      clockSkewSeconds: config.TOKEN_CLOCK_SKEW_SECONDS,
      findKey: (kid) => keys.publishedKey(kid),
    }),
  });
}
