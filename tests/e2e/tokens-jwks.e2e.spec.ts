import { createPrivateKey, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { decodeToken, fetchJwks, jwksKids, jwkThumbprint, privateJwkOf, sidecarVerify, signingKeyRows, waitFor } from '../helpers/jwt.js';
import { startServerProcess } from '../helpers/process.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ISSUER = 'https://identity.jwks.test';
const AUDIENCE = 'sidecar-test';
const TTL_SECONDS = 900;

let db: TestDatabase;
let env: Record<string, string>;
let service: TestService;
let client: GrpcIdentityClient;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { TOKEN_ISSUER: ISSUER, TOKEN_AUDIENCE: AUDIENCE, TOKEN_TTL_SECONDS: String(TTL_SECONDS) });
  service = await startTestService(env);
  client = new GrpcIdentityClient(service.url);
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

async function login(): Promise<{ userId: string; token: string; expiresAtSeconds: number }> {
  const email = `jwks.${Date.now()}.${randomBytes(3).toString('hex')}@example.com`;
  const registered = await client.registerUser({ email, password: 'correct horse battery', first_name: 'Side', last_name: 'Car' });
  const auth = await client.authenticate({ email, password: 'correct horse battery' });
  return { userId: registered['user']['id'], token: auth['access_token'], expiresAtSeconds: Number(auth['expires_at']['seconds']) };
}

describe("the sidecar's view", () => {
  it('verifies a token from Authenticate with plain node:crypto and nothing but the JWKS fetched over HTTP', async () => {
    const { userId, token, expiresAtSeconds } = await login();
    const jwks = await fetchJwks(service.adminUrl);
    expect(jwks.status).toBe(200);

    const before = Date.now();
    const { header, claims } = sidecarVerify(token, jwks.keys, { issuer: ISSUER, audience: AUDIENCE });
    expect(header).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(jwks.keys.map((key) => key['kid'])).toContain(header['kid']);
    expect(claims).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: userId,
      iat: expect.any(Number),
      nbf: expect.any(Number),
      exp: expect.any(Number),
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      sid: expect.stringMatching(/^[0-9a-f-]{36}$/), // the session (issue 13)
    });
    const iat = claims['iat'] as number;
    expect(Math.abs(iat - before / 1000)).toBeLessThan(60);
    expect(claims['nbf']).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(claims['exp']).toBe(iat + TTL_SECONDS);
    expect(expiresAtSeconds).toBe(claims['exp']);

    const verified = await client.verifyToken({ token });
    expect(verified).toMatchObject({ user_id: userId, token_id: claims['jti'] });
  });

  it('the same checks catch a token the sidecar must refuse (the verifier is not a rubber stamp)', async () => {
    const { token } = await login();
    const { keys } = await fetchJwks(service.adminUrl);
    const [h, p, s = ''] = token.split('.');
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    expect(() => sidecarVerify(`${h}.${p}.${flipped}`, keys, { issuer: ISSUER, audience: AUDIENCE })).toThrow('bad signature');
    expect(() => sidecarVerify(token, keys, { issuer: ISSUER, audience: 'other' })).toThrow('aud');
    expect(() => sidecarVerify(token, keys, { issuer: 'other', audience: AUDIENCE })).toThrow('iss');
    expect(() => sidecarVerify(token, keys, { issuer: ISSUER, audience: AUDIENCE, now: new Date(Date.now() + (TTL_SECONDS + 1) * 1000) })).toThrow('expired');
    expect(() => sidecarVerify(token, [], { issuer: ISSUER, audience: AUDIENCE })).toThrow('not in the JWKS');
  });
});

describe('the JWKS document', () => {
  it('lists only public members, use sig, alg and kid = RFC 7638 thumbprint', async () => {
    const { keys, headers } = await fetchJwks(service.adminUrl);
    expect(headers.get('content-type')).toMatch(/^application\/(jwk-set\+)?json/);
    expect(keys.length).toBeGreaterThanOrEqual(1);
    for (const key of keys) {
      expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(key).not.toHaveProperty('d');
      expect(key['kid']).toBe(jwkThumbprint(key));
      expect(key['kid']).toBe(await calculateJwkThumbprint(key as never, 'sha256'));
    }
  });

  it('names the key that signs the tokens', async () => {
    const { token } = await login();
    const { keys } = await fetchJwks(service.adminUrl);
    const kid = decodeToken(token).header['kid'];
    const rows = await signingKeyRows(db.knex);
    expect(rows.map((row) => row.kid)).toContain(kid);
    expect(keys.find((key) => key['kid'] === kid)).toBeDefined();
  });

  it('is cacheable for at most 300 s, with an ETag that answers 304 to If-None-Match', async () => {
    const first = await fetchJwks(service.adminUrl);
    const cacheControl = first.headers.get('cache-control') ?? '';
    expect(cacheControl).toMatch(/\bpublic\b/);
    const maxAge = Number(/\bmax-age=(\d+)/.exec(cacheControl)?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(300);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^(W\/)?"[^"]+"$/);

    const again = await fetchJwks(service.adminUrl);
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.text).toBe(first.text);

    const revalidated = await fetch(`${service.adminUrl}/.well-known/jwks.json`, { headers: { 'if-none-match': etag! } });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe('');
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect(revalidated.headers.get('cache-control')).toBe(cacheControl);

    const stale = await fetchJwks(service.adminUrl, { 'if-none-match': '"something-else"' });
    expect(stale.status).toBe(200);
    expect(stale.text).toBe(first.text);
  });
});

describe('private keys at rest', () => {
  it('are stored encrypted: the row holds neither the JWK d nor any PEM or DER of the key', async () => {
    const rows = await signingKeyRows(db.knex);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    for (const row of rows) {
      const privateJwk = await privateJwkOf(db.knex, row.kid, env['KEY_ENCRYPTION_KEY']!);
      const d = Buffer.from(privateJwk.d!, 'base64url');
      expect(d).toHaveLength(32);
      const privateKey = createPrivateKey({ key: privateJwk, format: 'jwk' });
      const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
      const sec1 = privateKey.export({ type: 'sec1', format: 'der' });

      expect(row.public_jwk).not.toHaveProperty('d');
      const stored = Buffer.from(row.private_key_encrypted);
      for (const secret of [d, pkcs8, sec1, Buffer.from(privateJwk.d!), Buffer.from(d.toString('hex')), Buffer.from(d.toString('base64'))]) {
        expect(stored.includes(secret)).toBe(false);
      }
      // Every column as text, as a database dump would show it.
      const [asText] = (await db.knex.raw('select s::text as line from signing_keys s where kid = ?', [row.kid])).rows;
      const dump: string = asText.line;
      for (const needle of [privateJwk.d!, d.toString('hex'), d.toString('base64'), pkcs8.toString('hex'), sec1.toString('hex'), 'PRIVATE KEY', '"d"']) {
        expect(dump).not.toContain(needle);
      }
    }
  });

  it('cannot be read with another KEY_ENCRYPTION_KEY: `identity serve` exits with a clear reason and changes nothing', async () => {
    const rowsBefore = await signingKeyRows(db.knex);
    const wrongKey = randomBytes(32).toString('base64');
    const started = startServerProcess({ ...testEnv(db), KEY_ENCRYPTION_KEY: wrongKey, LOG_LEVEL: 'error' }, 120_000);
    const error = await started.then(
      async (server) => {
        await server[Symbol.asyncDispose]();
        return new Error('the server started');
      },
      (failure: unknown) => failure as Error,
    );
    expect(error.message).toMatch(/exited \(1\) before starting/);
    expect(error.message).toMatch(/KEY_ENCRYPTION_KEY does not match/);
    expect(error.message).not.toContain(wrongKey);
    expect(error.message).not.toContain(env['KEY_ENCRYPTION_KEY']);
    expect(await signingKeyRows(db.knex)).toEqual(rowsBefore);
  }, 180_000);
});

describe('automatic rotation (KEY_ROTATION_DAYS)', () => {
  it('publishes a new key once the active one is older than the period, and signs with it after the lead time', async () => {
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    const autoEnv = { ...env, KEY_ROTATION_DAYS: '1', KEY_REFRESH_SECONDS: '1', KEY_PUBLISH_LEAD_SECONDS: '60' };
    await using auto = await startTestService(autoEnv, { clock });
    const autoClient = new GrpcIdentityClient(auto.url);
    try {
      const email = `auto.${Date.now()}@example.com`;
      await autoClient.registerUser({ email, password: 'correct horse battery', first_name: 'Au', last_name: 'To' });
      const kidNow = async () => String(decodeToken((await autoClient.authenticate({ email, password: 'correct horse battery' }))['access_token']).header['kid']);
      const [oldKid] = await jwksKids(auto.adminUrl);
      expect(await kidNow()).toBe(oldKid);

      offsetMs = 86_400_000 + 1_000;
      const kids = await waitFor(async () => {
        const published = await jwksKids(auto.adminUrl);
        return published.length === 2 && published;
      }, 'an automatically rotated key in the JWKS');
      expect(kids[0]).toBe(oldKid);
      expect(await kidNow()).toBe(oldKid);

      offsetMs += 61_000;
      expect(await kidNow()).toBe(kids[1]);
      expect((await signingKeyRows(db.knex)).map((row) => row.kid)).toEqual(kids);
    } finally {
      autoClient.close();
    }
  });
});
