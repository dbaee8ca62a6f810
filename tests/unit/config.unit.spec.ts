import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/infrastructure/config/load-config.js';

const KEK = randomBytes(32).toString('base64');

/** The problems loadConfig reports for an environment, failing the test if it accepts it. */
function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

/** The variable names the problems start with. */
const named = (list: readonly string[]) => list.map((problem) => problem.split(/[ .]/)[0]);

describe('loadConfig defaults (the contract\'s values)', () => {
  const config = loadConfig({});

  it.each([
    ['PORT', 50_051],
    ['ADMIN_PORT', 9_464],
    ['HOST', '0.0.0.0'],
    ['DATA_DIR', './data'],
    ['NATS_URL', 'nats://127.0.0.1:4222'],
    ['NATS_STREAM', 'IDENTITY'],
    ['NATS_SUBJECT_PREFIX', 'identity'],
    ['EVENT_SOURCE', 'identity-service'],
    ['TOKEN_TTL_SECONDS', 900],
    ['SESSION_IDLE_SECONDS', 1_209_600],
    ['SESSION_MAX_SECONDS', 2_592_000],
    ['REFRESH_REUSE_GRACE_SECONDS', 0],
    ['REVOCATION_RESYNC_SECONDS', 30],
    ['TOKEN_CLOCK_SKEW_SECONDS', 30],
    ['KEY_PUBLISH_LEAD_SECONDS', 1_800],
    ['BCRYPT_COST', 12],
    ['PASSWORD_MIN_LENGTH', 8],
    ['LOGIN_FREE_ATTEMPTS', 5],
    ['LOGIN_CLIENT_FREE_ATTEMPTS', 50],
    ['LOGIN_WINDOW_SECONDS', 900],
    ['LOGIN_MAX_DELAY_SECONDS', 900],
    ['TRUST_PROXY', false],
    ['MAX_MESSAGE_BYTES', 1_048_576],
    ['NODE_ENV', 'development'],
    ['LOG_LEVEL', 'info'],
  ] as const)('%s = %j', (name, value) => {
    expect(config[name]).toEqual(value);
  });

  it('signs with ES256 only', () => {
    expect(config.TOKEN_ALGORITHMS).toEqual(['ES256']);
  });

  it('without DATABASE_URL uses the embedded database and migrates on start', () => {
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.embeddedDatabase).toBe(true);
    expect(config.migrateOnStart).toBe(true);
  });

  it('keeps the NATS dedup window at 15 minutes or more, above the outbox lease', () => {
    expect(config.NATS_DUPLICATE_WINDOW_SECONDS).toBeGreaterThanOrEqual(900);
    expect(config.OUTBOX_LEASE_SECONDS).toBeLessThan(config.NATS_DUPLICATE_WINDOW_SECONDS);
  });

  it('has no key encryption key outside production', () => {
    expect(config.KEY_ENCRYPTION_KEY).toBeUndefined();
  });
});

describe('loadConfig reads the environment', () => {
  it('coerces numbers and flags', () => {
    const config = loadConfig({ PORT: '8080', BCRYPT_COST: '10', TRUST_PROXY: 'true', TOKEN_TTL_SECONDS: '600' });
    expect(config.PORT).toBe(8080);
    expect(config.BCRYPT_COST).toBe(10);
    expect(config.TRUST_PROXY).toBe(true);
    expect(config.TOKEN_TTL_SECONDS).toBe(600);
  });

  it('accepts BCRYPT_COST from 10 to 15', () => {
    for (const cost of [10, 11, 12, 13, 14, 15]) expect(loadConfig({ BCRYPT_COST: String(cost) }).BCRYPT_COST).toBe(cost);
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ PORT: '', DATABASE_URL: '', KEY_ENCRYPTION_KEY: '' });
    expect(config.PORT).toBe(50_051);
    expect(config.embeddedDatabase).toBe(true);
    expect(config.KEY_ENCRYPTION_KEY).toBeUndefined();
  });

  it('ignores variables it does not know (the rest of the environment)', () => {
    const config = loadConfig({ PATH: '/usr/bin', HOME: '/root', SOME_TYPO_PORT: 'abc' });
    expect(config).not.toHaveProperty('PATH');
    expect(config).not.toHaveProperty('SOME_TYPO_PORT');
  });

  it('with DATABASE_URL uses that PostgreSQL and does not migrate on start unless asked', () => {
    const url = 'postgres://app:secret@db.internal:5432/identity';
    const config = loadConfig({ DATABASE_URL: url });
    expect(config.DATABASE_URL).toBe(url);
    expect(config.embeddedDatabase).toBe(false);
    expect(config.migrateOnStart).toBe(false);
    expect(loadConfig({ DATABASE_URL: url, MIGRATE_ON_START: 'true' }).migrateOnStart).toBe(true);
    expect(loadConfig({ MIGRATE_ON_START: 'false' }).migrateOnStart).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/identity' }).embeddedDatabase).toBe(false);
  });

  it('accepts NATS_URL as the client does: URLs, host:port or a host, several separated by commas', () => {
    for (const url of ['nats://user:secret@nats.internal:4222', '127.0.0.1:4222', 'nats', 'nats://a:4222, nats://b:4222', 'tls://[::1]:4222']) {
      expect(loadConfig({ NATS_URL: url }).NATS_URL).toBe(url);
    }
  });

  it('keeps names with inner spaces (an issuer may be a phrase)', () => {
    expect(loadConfig({ TOKEN_ISSUER: 'Identity Service' }).TOKEN_ISSUER).toBe('Identity Service');
  });

  it('accepts both algorithms, with spaces around the commas', () => {
    expect(loadConfig({ TOKEN_ALGORITHMS: 'EdDSA' }).TOKEN_ALGORITHMS).toEqual(['EdDSA']);
    expect(loadConfig({ TOKEN_ALGORITHMS: ' ES256 , EdDSA ' }).TOKEN_ALGORITHMS).toEqual(['ES256', 'EdDSA']);
  });

  it('accepts a 32-byte base64 KEY_ENCRYPTION_KEY, and production with one', () => {
    expect(loadConfig({ KEY_ENCRYPTION_KEY: KEK }).KEY_ENCRYPTION_KEY).toBe(KEK);
    expect(loadConfig({ NODE_ENV: 'production', KEY_ENCRYPTION_KEY: KEK, MANAGEMENT_INSECURE: 'true' }).NODE_ENV).toBe('production');
  });
});

describe('the management port in production (issue 14)', () => {
  const production = { NODE_ENV: 'production', KEY_ENCRYPTION_KEY: KEK };
  const mtls = { MANAGEMENT_TLS_CERT_FILE: '/tls/tls.crt', MANAGEMENT_TLS_KEY_FILE: '/tls/tls.key', MANAGEMENT_TLS_CLIENT_CA_FILE: '/tls/ca.crt' };

  it('defaults to port 50052, cleartext, everyone allowed outside production', () => {
    expect(loadConfig({})).toMatchObject({ MANAGEMENT_PORT: 50_052, MANAGEMENT_INSECURE: false, TLS_RELOAD_SECONDS: 10 });
    expect(loadConfig({}).MANAGEMENT_ALLOWED_CALLERS).toBeUndefined();
  });

  it('refuses to start with the port open and neither mTLS nor MANAGEMENT_INSECURE, naming the variables', () => {
    const list = problems(production);
    expect(named(list)).toEqual(['MANAGEMENT_PORT']);
    for (const name of ['MANAGEMENT_TLS_CERT_FILE', 'MANAGEMENT_TLS_KEY_FILE', 'MANAGEMENT_TLS_CLIENT_CA_FILE', 'MANAGEMENT_INSECURE=true', 'MANAGEMENT_PORT=0']) {
      expect(list[0]).toContain(name);
    }
  });

  it.each([
    ['mutual TLS', mtls],
    ['MANAGEMENT_INSECURE=true (a mesh does the mTLS)', { MANAGEMENT_INSECURE: 'true' }],
    ['MANAGEMENT_PORT=0 (off)', { MANAGEMENT_PORT: '0' }],
  ])('starts with %s', (_name, env) => {
    expect(loadConfig({ ...production, ...env }).NODE_ENV).toBe('production');
  });

  it('does not count half of the mTLS files as mTLS', () => {
    expect(new Set(named(problems({ ...production, MANAGEMENT_TLS_CERT_FILE: '/tls/tls.crt' })))).toEqual(
      new Set(['MANAGEMENT_TLS_KEY_FILE', 'MANAGEMENT_TLS_CLIENT_CA_FILE']),
    );
  });

  it('reads the allowed callers as a comma-separated list of URI or DNS names', () => {
    expect(loadConfig({ MANAGEMENT_ALLOWED_CALLERS: ' spiffe://cluster.local/ns/ops/sa/admin , ops.internal', TRUST_PROXY: 'true' }).MANAGEMENT_ALLOWED_CALLERS).toEqual([
      'spiffe://cluster.local/ns/ops/sa/admin',
      'ops.internal',
    ]);
    expect(named(problems({ MANAGEMENT_ALLOWED_CALLERS: 'a,,b', TRUST_PROXY: 'true' }))).toEqual(['MANAGEMENT_ALLOWED_CALLERS']);
  });

  it('refuses allowed callers when no caller can have a name (neither mTLS nor TRUST_PROXY)', () => {
    expect(named(problems({ MANAGEMENT_ALLOWED_CALLERS: 'ops.internal' }))).toEqual(['MANAGEMENT_ALLOWED_CALLERS']);
    expect(loadConfig({ MANAGEMENT_ALLOWED_CALLERS: 'ops.internal', ...mtls }).MANAGEMENT_ALLOWED_CALLERS).toEqual(['ops.internal']);
  });
});

describe('loadConfig refuses invalid variables, naming each', () => {
  it.each([
    ['BCRYPT_COST', '9'],
    ['BCRYPT_COST', '16'],
    ['BCRYPT_COST', '12.5'],
    ['BCRYPT_COST', 'twelve'],
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['ADMIN_PORT', '1e6'],
    ['TOKEN_ALGORITHMS', 'HS256'],
    ['TOKEN_ALGORITHMS', 'none'],
    ['TOKEN_ALGORITHMS', 'ES256,HS256'],
    ['TOKEN_ALGORITHMS', 'RS256'],
    ['TOKEN_TTL_SECONDS', '0'],
    ['TOKEN_CLOCK_SKEW_SECONDS', '-5'],
    ['KEY_ENCRYPTION_KEY', randomBytes(31).toString('base64')],
    ['KEY_ENCRYPTION_KEY', randomBytes(33).toString('base64')],
    ['KEY_ENCRYPTION_KEY', randomBytes(16).toString('hex')],
    ['DATABASE_URL', 'mysql://db/identity'],
    ['DATABASE_URL', 'not a url'],
    ['LOG_LEVEL', 'verbose'],
    ['NODE_ENV', 'prod'],
    ['TRUST_PROXY', 'maybe'],
    ['LOGIN_FREE_ATTEMPTS', '0'],
    ['HOST', ' '],
    ['HOST', 'local host'],
    ['NATS_URL', '::::'],
    ['NATS_URL', 'nats://127.0.0.1:4222,'],
    ['TOKEN_ISSUER', ' '],
    ['TOKEN_AUDIENCE', 'internal-services '],
    ['DATA_DIR', ' '],
    ['EVENT_SOURCE', ' identity'],
  ])('%s=%j', (name, value) => {
    const list = problems({ [name]: value });
    expect(named(list)).toEqual([name]);
  });

  it('production without KEY_ENCRYPTION_KEY', () => {
    const list = problems({ NODE_ENV: 'production', MANAGEMENT_INSECURE: 'true' });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatch(/^KEY_ENCRYPTION_KEY .*production/);
  });

  it('reports several bad variables together, in one error', () => {
    let caught: unknown;
    try {
      loadConfig({ BCRYPT_COST: '9', PORT: 'abc', TOKEN_ALGORITHMS: 'HS256', KEY_ENCRYPTION_KEY: 'c2hvcnQ=', LOG_LEVEL: 'loud' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(new Set(named(error.problems))).toEqual(new Set(['BCRYPT_COST', 'PORT', 'TOKEN_ALGORITHMS', 'KEY_ENCRYPTION_KEY', 'LOG_LEVEL']));
    for (const name of ['BCRYPT_COST', 'PORT', 'TOKEN_ALGORITHMS', 'KEY_ENCRYPTION_KEY', 'LOG_LEVEL']) expect(error.message).toContain(name);
  });

  it('reports the production rule together with the other bad variables', () => {
    expect(new Set(named(problems({ NODE_ENV: 'production', PORT: 'abc' })))).toEqual(new Set(['PORT', 'KEY_ENCRYPTION_KEY', 'MANAGEMENT_PORT']));
    expect(new Set(named(problems({ NODE_ENV: 'production', BCRYPT_COST: '16', TOKEN_ALGORITHMS: 'HS256' })))).toEqual(
      new Set(['BCRYPT_COST', 'TOKEN_ALGORITHMS', 'KEY_ENCRYPTION_KEY', 'MANAGEMENT_PORT']),
    );
  });

  it('never repeats a bad secret in the error', () => {
    const badKey = randomBytes(31).toString('base64');
    const badUrl = 'mysql://app:hunter2-db-password@db/identity';
    const list = problems({ KEY_ENCRYPTION_KEY: badKey, DATABASE_URL: badUrl });
    expect(list.join('\n')).not.toContain(badKey);
    expect(list.join('\n')).not.toContain('hunter2-db-password');
  });
});

describe('describeConfig', () => {
  it('masks KEY_ENCRYPTION_KEY', () => {
    const described = describeConfig(loadConfig({ KEY_ENCRYPTION_KEY: KEK }));
    expect(described['KEY_ENCRYPTION_KEY']).toBe('********');
    expect(JSON.stringify(described)).not.toContain(KEK);
  });

  it('masks the password inside DATABASE_URL and keeps the rest', () => {
    const described = describeConfig(loadConfig({ DATABASE_URL: 'postgres://app:s3cr3t-pw@db.internal:5432/identity?sslmode=require' }));
    const url = new URL(described['DATABASE_URL'] as string);
    expect(url.password).toBe('********');
    expect(url.username).toBe('app');
    expect(url.host).toBe('db.internal:5432');
    expect(url.pathname).toBe('/identity');
    expect(url.searchParams.get('sslmode')).toBe('require');
    expect(JSON.stringify(described)).not.toContain('s3cr3t-pw');
  });

  it('masks a percent-encoded password', () => {
    const described = describeConfig(loadConfig({ DATABASE_URL: 'postgresql://app:p%40ss%3Aw0rd@db/identity' }));
    expect(JSON.stringify(described)).not.toContain('p%40ss');
    expect(JSON.stringify(described)).not.toContain('p@ss');
  });

  it('leaves a DATABASE_URL without password as it is', () => {
    const described = describeConfig(loadConfig({ DATABASE_URL: 'postgres://app@db.internal/identity' }));
    expect(described['DATABASE_URL']).toBe('postgres://app@db.internal/identity');
  });

  it('shows everything else unchanged, and an unset secret as unset', () => {
    const config = loadConfig({ PORT: '8080' });
    const described = describeConfig(config);
    expect(described['PORT']).toBe(8080);
    expect(described['KEY_ENCRYPTION_KEY']).toBeUndefined();
    expect(Object.keys(described).sort()).toEqual(Object.keys(config).sort());
  });
});
