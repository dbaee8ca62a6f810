import { pino, type DestinationStream, type Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  readonly nodeEnv: string;
  /** Where lines go; stdout by default. Tests pass a stream to read what was logged. */
  readonly destination?: DestinationStream;
}

/**
 * Secrets that must never reach a log line, wherever they sit in a logged object. Value
 * objects for passwords and hashes also print as placeholders; this is the second fence.
 */
const REDACT_KEYS = [
  'password',
  'passwordHash',
  'password_hash',
  'currentPassword',
  'current_password',
  'newPassword',
  'new_password',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'refreshTokenHash',
  'refresh_token_hash',
  'previousRefreshTokenHash',
  'previous_refresh_token_hash',
  'token_hash',
  'authorization',
  'privateKey',
  'private_key',
  'privateKeyEncrypted',
  'private_key_encrypted',
  'KEY_ENCRYPTION_KEY',
];
const REDACT_PATHS = REDACT_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/** JSON lines to stdout; pretty only for a person at a terminal outside production. */
export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { service: 'identity' },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination !== undefined) return pino(base, options.destination);
  const pretty = process.stdout.isTTY === true && options.nodeEnv !== 'production';
  return pretty ? pino({ ...base, transport: { target: 'pino-pretty' } }) : pino(base);
}

/** `john@example.com` -> `j***@example.com`: enough to correlate, not enough to enumerate. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  const first = String.fromCodePoint(email.codePointAt(0) ?? 0x2a);
  return `${first}***${email.slice(at)}`;
}
