import { availableParallelism } from 'node:os';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { isNatsServer, natsServers } from './nats-servers.js';

const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const flag = (fallback: boolean) => z.stringbool().default(fallback);
const port = (fallback: number) => int(0, 65_535, fallback);
/** A name or value copied with stray blanks around it would fail far from its cause. */
const text = (fallback: string) =>
  z
    .string()
    .regex(/^\S(.*\S)?$/, 'must not be empty or start or end with a space')
    .default(fallback);
const hostName = z.string().regex(/^[^\s/]+$/, 'must be a host name or address, without spaces');
const natsServerList = z
  .string()
  .refine((value) => natsServers(value).every(isNatsServer), 'must be a comma-separated list of nats://host:port URLs');
/** Refused here, at start, with the entry named, rather than by proxy-addr on the first request. */
const cidrProblem = (cidr: string): string | undefined => {
  if (cidr === '') return 'an empty entry';
  try {
    proxyaddr.compile(cidr);
    return undefined;
  } catch (error) {
    return `${JSON.stringify(cidr)}: ${(error as Error).message}`;
  }
};
const cidrList = z
  .string()
  .transform((value) => value.split(',').map((cidr) => cidr.trim()))
  .superRefine((cidrs, ctx) => {
    const problems = cidrs.map(cidrProblem).filter((problem) => problem !== undefined);
    if (problems.length > 0) ctx.addIssue({ code: 'custom', message: `must be comma-separated CIDRs (${problems.join(', ')})` });
  });
/** A file the service reads at start (and re-reads when it changes): a path, not its contents. */
const filePath = z.string().regex(/^\S(.*\S)?$/, 'must be a file path without surrounding spaces');
/** Identities a client certificate may carry (URI or DNS SANs, e.g. spiffe://cluster.local/ns/ops/sa/admin). */
const callerList = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()))
  .refine((entries) => entries.every((entry) => /^\S+$/.test(entry)), 'must be a comma-separated list of URI or DNS names, without empty entries');
const MANAGEMENT_TLS = ['MANAGEMENT_TLS_CERT_FILE', 'MANAGEMENT_TLS_KEY_FILE', 'MANAGEMENT_TLS_CLIENT_CA_FILE'] as const;
const API_TLS = ['TLS_CERT_FILE', 'TLS_KEY_FILE'] as const;

const base64Key = z
  .string()
  .refine((value) => Buffer.from(value, 'base64').length === 32, 'must be 32 bytes, base64-encoded');

/**
 * Every environment variable the service reads, with its default. Names are fixed by the
 * contract; the ones it does not name are this service's own and documented in the README.
 */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: hostName.default('0.0.0.0'),
    PORT: port(50_051),
    ADMIN_PORT: port(9_464),
    /** UserManagementService's own port; 0 turns it off. */
    MANAGEMENT_PORT: port(50_052),
    MANAGEMENT_TLS_CERT_FILE: filePath.optional(),
    MANAGEMENT_TLS_KEY_FILE: filePath.optional(),
    MANAGEMENT_TLS_CLIENT_CA_FILE: filePath.optional(),
    MANAGEMENT_ALLOWED_CALLERS: callerList.optional(),
    /** The management port in cleartext in production: a mesh does the mTLS and restricts the port. */
    MANAGEMENT_INSECURE: flag(false),
    /** HTTP/2 over TLS on the API port, for deployments without a mesh. */
    TLS_CERT_FILE: filePath.optional(),
    TLS_KEY_FILE: filePath.optional(),
    /** How often the certificate files are checked for a change (cert-manager rotates them). */
    TLS_RELOAD_SECONDS: int(1, 3_600, 10),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    DATA_DIR: text('./data'),
    DB_POOL_MAX: int(1, 200, 10),
    MIGRATE_ON_START: z.stringbool().optional(),

    NATS_URL: natsServerList.default('nats://127.0.0.1:4222'),
    NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/).default('IDENTITY'),
    NATS_SUBJECT_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('identity'),
    NATS_DUPLICATE_WINDOW_SECONDS: int(900, 7 * 86_400, 1_200),
    // JetStream's limit; 3 (or 5) on a cluster, as an even count survives no more failures than the odd one below it.
    NATS_STREAM_REPLICAS: int(1, 5, 1),
    NATS_STREAM_MAX_AGE_SECONDS: int(0, 10 * 365 * 86_400, 0),
    EVENT_SOURCE: text('identity-service'),

    OUTBOX_RELAY: flag(true),
    OUTBOX_POLL_MS: int(10, 60_000, 500),
    OUTBOX_BATCH_SIZE: int(1, 1_000, 100),
    OUTBOX_MAX_IN_FLIGHT: int(1, 1_024, 64),
    OUTBOX_MAX_ATTEMPTS: int(1, 1_000, 20),
    OUTBOX_BACKOFF_BASE_MS: int(1, 3_600_000, 1_000),
    OUTBOX_BACKOFF_MAX_MS: int(1, 86_400_000, 300_000),
    OUTBOX_LEASE_SECONDS: int(5, 600, 10),
    OUTBOX_RETENTION_HOURS: int(1, 24 * 365, 72),

    TOKEN_ISSUER: text('identity-service'),
    TOKEN_AUDIENCE: text('internal-services'),
    TOKEN_TTL_SECONDS: int(60, 86_400, 900),
    TOKEN_CLOCK_SKEW_SECONDS: int(0, 300, 30),
    TOKEN_ALGORITHMS: z
      .string()
      .transform((value) => value.split(',').map((alg) => alg.trim()))
      .pipe(z.array(z.enum(['ES256', 'EdDSA'])).min(1))
      .default(['ES256']),
    TOKEN_CACHE_SIZE: int(0, 1_000_000, 10_000),
    KEY_ENCRYPTION_KEY: base64Key.optional(),
    SESSION_IDLE_SECONDS: int(60, 365 * 86_400, 1_209_600),
    SESSION_MAX_SECONDS: int(60, 3 * 365 * 86_400, 2_592_000),
    REFRESH_REUSE_GRACE_SECONDS: int(0, 300, 0),
    REVOCATION_RESYNC_SECONDS: int(1, 3_600, 30),
    KEY_PUBLISH_LEAD_SECONDS: int(0, 30 * 86_400, 1_800),
    KEY_ROTATION_DAYS: int(0, 3_650, 0),
    KEY_REFRESH_SECONDS: int(1, 3_600, 30),
    /** ext_authz Check: an allowed request reaches the upstream without its Authorization header. */
    EXT_AUTHZ_STRIP_AUTHORIZATION: flag(false),
    /** VerifyToken and Check over plain gRPC answered without connect-node's per-call pipeline (issue 16). */
    UNARY_FAST_PATH: flag(true),

    BCRYPT_COST: int(10, 15, 12),
    // Every core hashes: the threads run at nice 10, so the event loop still wins the CPU (bench: mixed).
    HASH_WORKERS: int(1, 64, availableParallelism()),
    HASH_QUEUE_MAX: int(0, 10_000, 16),
    PASSWORD_MIN_LENGTH: int(8, 64, 8),

    LOGIN_THROTTLE: flag(true),
    LOGIN_FREE_ATTEMPTS: int(1, 1_000, 5),
    LOGIN_CLIENT_FREE_ATTEMPTS: int(1, 100_000, 50),
    LOGIN_WINDOW_SECONDS: int(1, 86_400, 900),
    LOGIN_MAX_DELAY_SECONDS: int(1, 86_400, 900),
    TRUST_PROXY: flag(false),
    TRUSTED_PROXIES: cidrList.default(['127.0.0.0/8', '::1/128']),

    MAX_MESSAGE_BYTES: int(1_024, 64 * 1_048_576, 1_048_576),
    MAX_CONCURRENT_STREAMS: int(1, 10_000, 100),
    MAX_HEADER_BYTES: int(1_024, 1_048_576, 16_384),
    IDLE_TIMEOUT_SECONDS: int(1, 86_400, 300),
    REQUEST_TIMEOUT_SECONDS: int(1, 3_600, 30),
    // Sized for the image's 96 MB heap (measured: README, Configuration).
    MAX_CONNECTIONS: int(1, 1_000_000, 2_000),
    MAX_OPEN_STREAMS: int(1, 1_000_000, 500),
    PREFACE_TIMEOUT_SECONDS: int(1, 300, 10),
    HEALTH_WATCH_MAX: int(0, 100_000, 100),
    HEALTH_WATCH_LIFETIME_SECONDS: int(1, 86_400, 120),
    SHUTDOWN_GRACE_SECONDS: int(0, 600, 20),
    READY_MAX_OUTBOX_LAG_SECONDS: z.coerce.number().int().min(1).optional(),
  })
  // `when`: run even after another variable failed its type check (zod skips refinements then
  // by default), so one error names every bad variable: NODE_ENV=production PORT=abc named only PORT.
  .superRefine((env, ctx) => {
    const managementTls = MANAGEMENT_TLS.filter((name) => env[name] !== undefined);
    if (managementTls.length > 0 && managementTls.length < MANAGEMENT_TLS.length) {
      for (const name of MANAGEMENT_TLS.filter((name) => env[name] === undefined)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `is required with ${managementTls.join(' and ')} (mutual TLS needs the certificate, its key and the client CA)` });
      }
    }
    const apiTls = API_TLS.filter((name) => env[name] !== undefined);
    if (apiTls.length === 1) {
      const missing = API_TLS.find((name) => env[name] === undefined)!;
      ctx.addIssue({ code: 'custom', path: [missing], message: `is required with ${apiTls[0]}` });
    }
    if (env.NODE_ENV === 'production' && env.MANAGEMENT_PORT !== 0 && managementTls.length === 0 && env.MANAGEMENT_INSECURE !== true) {
      ctx.addIssue({
        code: 'custom',
        path: ['MANAGEMENT_PORT'],
        message:
          'is open without mutual TLS while NODE_ENV=production: set MANAGEMENT_TLS_CERT_FILE, MANAGEMENT_TLS_KEY_FILE and MANAGEMENT_TLS_CLIENT_CA_FILE, or MANAGEMENT_INSECURE=true (a mesh does the mTLS and restricts the port), or MANAGEMENT_PORT=0',
      });
    }
    if (env.MANAGEMENT_ALLOWED_CALLERS !== undefined && managementTls.length === 0 && env.TRUST_PROXY !== true) {
      ctx.addIssue({
        code: 'custom',
        path: ['MANAGEMENT_ALLOWED_CALLERS'],
        message: 'needs MANAGEMENT_TLS_* (certificate SANs) or TRUST_PROXY=true (the sidecar\'s x-forwarded-client-cert): without either no caller has a name to match',
      });
    }
    if (env.MANAGEMENT_PORT !== 0 && env.MANAGEMENT_PORT === env.PORT) {
      ctx.addIssue({ code: 'custom', path: ['MANAGEMENT_PORT'], message: 'must differ from PORT: user management is never served on the API port' });
    }
    if (env.NODE_ENV === 'production' && env.KEY_ENCRYPTION_KEY === undefined) {
      ctx.addIssue({ code: 'custom', path: ['KEY_ENCRYPTION_KEY'], message: 'is required when NODE_ENV=production' });
    }
    if (env.KEY_PUBLISH_LEAD_SECONDS > 0 && env.KEY_PUBLISH_LEAD_SECONDS < env.KEY_REFRESH_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['KEY_PUBLISH_LEAD_SECONDS'],
        message: 'must be at least KEY_REFRESH_SECONDS, or a replica could sign with a key it has not yet seen retired',
      });
    }
    if (env.OUTBOX_LEASE_SECONDS >= env.NATS_DUPLICATE_WINDOW_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['OUTBOX_LEASE_SECONDS'],
        message: 'must be shorter than NATS_DUPLICATE_WINDOW_SECONDS, or a retried publish could escape deduplication',
      });
    }
    if (env.NATS_STREAM_MAX_AGE_SECONDS > 0 && env.NATS_STREAM_MAX_AGE_SECONDS < env.NATS_DUPLICATE_WINDOW_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['NATS_STREAM_MAX_AGE_SECONDS'],
        message: 'must be 0 (no limit) or at least NATS_DUPLICATE_WINDOW_SECONDS, as JetStream requires',
      });
    }
  }, { when: () => true });

export type Env = z.infer<typeof configSchema>;
