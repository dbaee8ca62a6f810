import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { IssuedToken } from '../../application/ports/token-provider.port.js';
import type { LoadedKey } from './key-ring.js';

export interface JwtSignerOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
}

/** Signs access tokens with jose: header alg/kid/typ, claims iss, aud, sub, iat, nbf, exp, jti. */
export class JwtSigner {
  constructor(private readonly options: JwtSignerOptions) {}

  async sign(subject: string, key: LoadedKey, now: Date): Promise<IssuedToken> {
    if (key.privateKey === undefined) throw new Error(`signing key ${key.kid} has no private key loaded`);
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.options.ttlSeconds;
    const tokenId = randomUUID();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(tokenId)
      .sign(key.privateKey);
    return { token, tokenId, issuedAt: new Date(issuedAt * 1000), expiresAt: new Date(expiresAt * 1000) };
  }
}
