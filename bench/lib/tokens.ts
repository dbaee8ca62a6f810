import { importJWK, type JWK } from 'jose';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { KeyEncryption } from '../../src/infrastructure/tokens/key-encryption.js';
import { keyState } from '../../src/infrastructure/tokens/key-lifecycle.js';
import { JwtSigner } from '../../src/infrastructure/tokens/jwt-signer.js';
import type { LoadedKey } from '../../src/infrastructure/tokens/key-ring.js';
import { SigningKeyStore } from '../../src/infrastructure/tokens/signing-key.store.js';
import type { BenchDatabase } from './database.js';
import type { ServiceHandle } from './service.js';

/**
 * Access tokens exactly as the running service issues them (its active key, its signer,
 * its issuer, audience and lifetime), made without N Authenticate calls: at bcrypt cost 12
 * 20,000 logins would take over an hour. The bench knows KEY_ENCRYPTION_KEY because it set it.
 */
export async function mintTokens(service: ServiceHandle, db: BenchDatabase, count: number, claims: { readonly userId?: string; readonly sessionId?: string } = {}): Promise<string[]> {
  const config = loadConfig(service.env);
  const now = new Date();
  const stored = (await new SigningKeyStore(db.knex).list()).find((key) => keyState(key, now) === 'active');
  if (stored === undefined) throw new Error('the service has no active signing key');
  const encryption = new KeyEncryption(Buffer.from(config.KEY_ENCRYPTION_KEY!, 'base64'));
  const privateJwk = JSON.parse(encryption.decrypt(stored.kid, stored.privateKeyEncrypted).toString('utf8')) as JWK;
  // The signer reads only kid, alg and the private key of a loaded key.
  const key = { kid: stored.kid, alg: stored.alg, privateKey: (await importJWK(privateJwk, stored.alg)) as CryptoKey } as LoadedKey;
  const signer = new JwtSigner({ issuer: config.TOKEN_ISSUER, audience: config.TOKEN_AUDIENCE, ttlSeconds: config.TOKEN_TTL_SECONDS });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) tokens.push((await signer.sign(claims.userId ?? UserId.generate().value, key, now, claims.sessionId)).token);
  return tokens;
}

/** The service's published keys, fetched from its JWKS endpoint as a mesh sidecar would. */
export async function fetchJwks(service: ServiceHandle): Promise<JWK[]> {
  const response = await fetch(`${service.adminUrl}/.well-known/jwks.json`);
  if (!response.ok) throw new Error(`JWKS answered ${response.status}`);
  return ((await response.json()) as { keys: JWK[] }).keys;
}
