import { maskNatsUrl, maskUrlPassword } from './mask-url.js';
import { configSchema, type Env } from './config.schema.js';
import { CodedError } from '../../domain/shared/coded-error.js';

/** The effective configuration: the parsed environment plus the values derived from it. */
export type Config = Env & {
  /** True when DATABASE_URL is unset and the embedded PGlite database serves this process. */
  readonly embeddedDatabase: boolean;
  readonly migrateOnStart: boolean;
};

/** Thrown with every bad variable at once; the CLI prints it and exits with code 2. */
export class ConfigError extends CodedError {
  readonly code = 'CONFIG.INVALID';

  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

const knownNames = new Set(Object.keys(configSchema.shape));

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "unset", as in most shells' `VAR= cmd`.
  const input = Object.fromEntries(
    Object.entries(env).filter(([name, value]) => knownNames.has(name) && value !== undefined && value !== ''),
  );
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'} ${issue.message}`);
    throw new ConfigError(problems);
  }
  const embeddedDatabase = parsed.data.DATABASE_URL === undefined;
  return { ...parsed.data, embeddedDatabase, migrateOnStart: parsed.data.MIGRATE_ON_START ?? embeddedDatabase };
}

const SECRET_NAMES = new Set(['KEY_ENCRYPTION_KEY']);

/** The configuration with secrets masked (and the password inside DATABASE_URL), for `identity config`. */
export function describeConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([name, value]) => {
      if (SECRET_NAMES.has(name) && value !== undefined) return [name, '********'];
      if (name === 'DATABASE_URL' && typeof value === 'string') return [name, maskUrlPassword(value)];
      if (name === 'NATS_URL' && typeof value === 'string') return [name, maskNatsUrl(value)];
      return [name, value];
    }),
  );
}
