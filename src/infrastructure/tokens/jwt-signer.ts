import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { IssuedToken } from '../../application/ports/token-provider.port.js';
import type { LoadedKey } from './key-ring.js';
import { withLowS } from './p256-low-s.js';

export interface JwtSignerOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
}

/** Signs access tokens with jose: header alg/kid/typ, claims iss, aud, sub, iat, nbf, exp, jti, and sid for a session's token. */
export class JwtSigner {
  constructor(private readonly options: JwtSignerOptions) {}

  async sign(subject: string, key: LoadedKey, now: Date, sessionId?: string): Promise<IssuedToken> {
    if (key.privateKey === undefined) throw new Error(`signing key ${key.kid} has no private key loaded`);
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.options.ttlSeconds;
    const tokenId = randomUUID();
    const token = await new SignJWT(sessionId === undefined ? {} : { sid: sessionId })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(tokenId)
      .sign(key.privateKey);
    return { token: key.alg === 'ES256' ? withLowSToken(token) : token, tokenId, issuedAt: new Date(issuedAt * 1000), expiresAt: new Date(expiresAt * 1000) };
  }
}

/** WebCrypto picks s or n − s at random; the verifier accepts only the low one. */
function withLowSToken(token: string): string {
  const dot = token.lastIndexOf('.');
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  return `${token.slice(0, dot + 1)}${Buffer.from(withLowS(signature)).toString('base64url')}`;
}
