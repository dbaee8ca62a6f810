/**
 * The `identity` command as an operator runs it (issue 7): invalid configuration fails fast with
 * exit code 2 and one line naming every bad variable, `identity config` prints the effective
 * configuration with secrets masked, and the exit codes 0/1/2 hold for usage and help.
 */
import { randomBytes } from 'node:crypto';
import type { CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/infrastructure/config/load-config.js';
import type { CliDeps } from '../../src/transport/cli/cli-deps.js';
import { buildProgram } from '../../src/transport/cli/program.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/process.js';

const KEY = randomBytes(32).toString('base64');

/** A valid environment that needs no database or NATS for `identity config`. */
const base = { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://identity:s3cr3t-pw@db.internal:5432/identity', KEY_ENCRYPTION_KEY: KEY };

/** The variables named in an `identity: invalid configuration: A ...; B ...` line. */
function namedVariables(stderr: string): string[] {
  const match = /^identity: invalid configuration: (.*)$/.exec(stderr.trim());
  expect(match, stderr).not.toBeNull();
  return match![1]!.split('; ').map((problem) => problem.split(/[ .]/)[0]!);
}

/** Every variable's bad values; the CLI is run for the first few, the rest go through the same loadConfig in-process. */
const INVALID: [string, Record<string, string>, string][] = [
  ['BCRYPT_COST below 10', { BCRYPT_COST: '9' }, 'BCRYPT_COST'],
  ['PORT negative', { PORT: '-1' }, 'PORT'],
  ['TOKEN_TTL_SECONDS not a number', { TOKEN_TTL_SECONDS: 'abc' }, 'TOKEN_TTL_SECONDS'],
  ['KEY_ENCRYPTION_KEY missing in production', { NODE_ENV: 'production', KEY_ENCRYPTION_KEY: '', MANAGEMENT_INSECURE: 'true' }, 'KEY_ENCRYPTION_KEY'],
  ['DATABASE_URL of another database', { DATABASE_URL: 'mysql://user:hunter2@x/db' }, 'DATABASE_URL'],
  ['BCRYPT_COST above 15', { BCRYPT_COST: '16' }, 'BCRYPT_COST'],
  ['PORT above 65535', { PORT: '65536' }, 'PORT'],
  ['ADMIN_PORT not a number', { ADMIN_PORT: 'http' }, 'ADMIN_PORT'],
  ['TOKEN_TTL_SECONDS fractional', { TOKEN_TTL_SECONDS: '90.5' }, 'TOKEN_TTL_SECONDS'],
  ['TOKEN_TTL_SECONDS under a minute', { TOKEN_TTL_SECONDS: '10' }, 'TOKEN_TTL_SECONDS'],
  ['KEY_ENCRYPTION_KEY not 32 bytes', { KEY_ENCRYPTION_KEY: 'c2hvcnQta2V5' }, 'KEY_ENCRYPTION_KEY'],
  ['DATABASE_URL not a URL', { DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
  ['NODE_ENV unknown', { NODE_ENV: 'staging' }, 'NODE_ENV'],
  ['LOG_LEVEL unknown', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ['OUTBOX_RELAY not a boolean', { OUTBOX_RELAY: 'maybe' }, 'OUTBOX_RELAY'],
  ['MIGRATE_ON_START not a boolean', { MIGRATE_ON_START: 'sometimes' }, 'MIGRATE_ON_START'],
  ['TOKEN_ALGORITHMS with HS256', { TOKEN_ALGORITHMS: 'ES256,HS256' }, 'TOKEN_ALGORITHMS'],
  ['TOKEN_ALGORITHMS none', { TOKEN_ALGORITHMS: 'none' }, 'TOKEN_ALGORITHMS'],
  ['TOKEN_CLOCK_SKEW_SECONDS above 300', { TOKEN_CLOCK_SKEW_SECONDS: '301' }, 'TOKEN_CLOCK_SKEW_SECONDS'],
  ['SHUTDOWN_GRACE_SECONDS negative', { SHUTDOWN_GRACE_SECONDS: '-5' }, 'SHUTDOWN_GRACE_SECONDS'],
  ['HASH_QUEUE_MAX negative', { HASH_QUEUE_MAX: '-1' }, 'HASH_QUEUE_MAX'],
  ['HASH_WORKERS zero', { HASH_WORKERS: '0' }, 'HASH_WORKERS'],
  ['NATS_STREAM with a dot', { NATS_STREAM: 'IDENTITY.v1' }, 'NATS_STREAM'],
  ['READY_MAX_OUTBOX_LAG_SECONDS zero', { READY_MAX_OUTBOX_LAG_SECONDS: '0' }, 'READY_MAX_OUTBOX_LAG_SECONDS'],
  ['MANAGEMENT_PORT open without mTLS in production (issue 14)', { NODE_ENV: 'production' }, 'MANAGEMENT_PORT'],
  ['MANAGEMENT_PORT the same as PORT', { PORT: '7000', MANAGEMENT_PORT: '7000' }, 'MANAGEMENT_PORT'],
  ['MANAGEMENT_TLS_CLIENT_CA_FILE missing beside the certificate and key', { MANAGEMENT_TLS_CERT_FILE: '/c.pem', MANAGEMENT_TLS_KEY_FILE: '/k.pem' }, 'MANAGEMENT_TLS_CLIENT_CA_FILE'],
  ['TLS_KEY_FILE missing beside TLS_CERT_FILE', { TLS_CERT_FILE: '/c.pem' }, 'TLS_KEY_FILE'],
];
const CLI_CASES = 5;

describe('invalid configuration', () => {
  it.each(INVALID.slice(0, CLI_CASES))('%s: `identity config` exits 2 with one line naming the variable', async (_case, env, variable) => {
    const result = await runCli(['config'], { ...base, ...env });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(namedVariables(result.stderr)).toEqual([variable]);
    // A bad value is not repeated: it may hold a secret.
    expect(result.stderr).not.toContain('hunter2');
  });

  it.each(INVALID.slice(CLI_CASES))('%s: the same check names the variable', (_case, env, variable) => {
    let error: unknown;
    try {
      loadConfig({ ...base, ...env });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(namedVariables(`identity: ${(error as ConfigError).message}`)).toEqual([variable]);
    expect((error as ConfigError).message).not.toContain('\n');
    if (variable === 'KEY_ENCRYPTION_KEY') expect((error as ConfigError).message).not.toContain(env['KEY_ENCRYPTION_KEY']);
  });

  it('names every bad variable in one message, including the cross-variable rules', async () => {
    const result = await runCli(['config'], {
      ...base,
      NODE_ENV: 'production',
      KEY_ENCRYPTION_KEY: '',
      BCRYPT_COST: '9',
      PORT: '-1',
      TOKEN_TTL_SECONDS: 'abc',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(namedVariables(result.stderr).sort()).toEqual(['BCRYPT_COST', 'DATABASE_URL', 'KEY_ENCRYPTION_KEY', 'LOG_LEVEL', 'MANAGEMENT_PORT', 'PORT', 'TOKEN_TTL_SECONDS']);
  });

  it('refuses to serve in production with the management port open and neither mTLS nor MANAGEMENT_INSECURE (issue 14): exit 2, naming the variables', async () => {
    const result = await runCli(['serve'], { ...base, NODE_ENV: 'production', PORT: '0', ADMIN_PORT: '0' }, 30_000);
    expect(result.code, result.stderr).toBe(2);
    expect(namedVariables(result.stderr)).toEqual(['MANAGEMENT_PORT']);
    for (const name of ['MANAGEMENT_TLS_CERT_FILE', 'MANAGEMENT_TLS_KEY_FILE', 'MANAGEMENT_TLS_CLIENT_CA_FILE', 'MANAGEMENT_INSECURE=true', 'MANAGEMENT_PORT=0']) {
      expect(result.stderr).toContain(name);
    }
  });

  it('stops `identity serve` (the default command) before it binds anything', async () => {
    for (const args of [['serve'], []]) {
      const result = await runCli(args, { ...base, PORT: 'abc', ADMIN_PORT: '0' }, 30_000);
      expect(result.code, result.stderr).toBe(2);
      expect(namedVariables(result.stderr)).toEqual(['PORT']);
    }
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ ...base, PORT: '', BCRYPT_COST: '' })).toMatchObject({ PORT: 50051, BCRYPT_COST: 12 });
  });
});

describe('identity config', () => {
  it('prints the effective configuration as JSON, with KEY_ENCRYPTION_KEY and the database password masked', async () => {
    const result = await runCli(['config'], { ...base, NODE_ENV: 'production', PORT: '6000', BCRYPT_COST: '13', MANAGEMENT_INSECURE: 'true' });
    expect(result.code, result.stderr).toBe(0);
    const config = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(config).toMatchObject({
      NODE_ENV: 'production',
      PORT: 6000,
      ADMIN_PORT: 9464,
      HOST: '0.0.0.0',
      BCRYPT_COST: 13,
      TOKEN_TTL_SECONDS: 900, // the default since sessions (issue 13)
      TOKEN_ALGORITHMS: ['ES256'],
      SHUTDOWN_GRACE_SECONDS: 20,
      NATS_URL: 'nats://127.0.0.1:4222',
      KEY_ENCRYPTION_KEY: '********',
      DATABASE_URL: 'postgres://identity:********@db.internal:5432/identity',
      migrateOnStart: false,
    });
    expect(result.stdout).not.toContain(KEY);
    expect(result.stdout).not.toContain('s3cr3t-pw');
    expect(result.stderr).toBe('');
  });

  it('leaves a DATABASE_URL without a password as it is, and shows an unset key as absent', async () => {
    const result = await runCli(['config'], { NODE_ENV: 'test', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/identity' });
    expect(result.code, result.stderr).toBe(0);
    const config = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(config['DATABASE_URL']).toBe('postgres://postgres@127.0.0.1:5432/identity');
    expect(config['KEY_ENCRYPTION_KEY']).toBeUndefined();
  });
});

const COMMANDS = [[], ['serve'], ['migrate'], ['outbox'], ['outbox', 'flush'], ['outbox', 'stats'], ['outbox', 'retry-dead'], ['keys'], ['keys', 'list'], ['keys', 'rotate'], ['events'], ['events', 'tail'], ['config']];
const named = (commands: string[][]) => commands.map((args) => [args.join(' '), args] as const);

describe('usage and help', () => {
  it.each(named([['bogus'], ['outbox', 'bogus'], ['migrate', 'sideways'], ['config', '--no-such-option']]))('`identity %s` is a usage error: exit code 2', async (_title, args) => {
    const result = await runCli(args, base, 30_000);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).not.toBe('');
  });

  it.each(named([[], ['migrate'], ['outbox', 'flush']]))('`identity %s --help` prints its usage and exits 0', async (_title, args) => {
    const result = await runCli([...args, '--help'], base, 30_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Usage: identity${args.length > 0 ? ` ${args.join(' ')}` : ''} `);
    if (args.length === 0) expect(result.stdout).toMatch(/Exit codes: 0 .*, 1 .*, 2 /);
  });

  it('`--help` works even when the environment is invalid: configuration is read only to run a command', async () => {
    const help = await runCli(['keys', '--help'], { ...base, BCRYPT_COST: '9' }, 30_000);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: identity keys');
    const run = await runCli(['keys', 'list'], { ...base, BCRYPT_COST: '9' }, 30_000);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('BCRYPT_COST');
  });

  // The same commander program, in-process, for every command (main() exits with the code it throws).
  it.each(named(COMMANDS))('`identity %s --help` ends with exit code 0 and runs nothing', async (_title, args) => {
    const ran: string[] = [];
    const handlers = new Proxy({} as CliDeps, { get: (_target, name) => () => Promise.resolve(void ran.push(String(name))) });
    const written = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const error = await buildProgram(() => handlers, () => undefined)
        .parseAsync([...args, '--help'], { from: 'user' })
        .then(() => undefined, (e: unknown) => e as CommanderError);
      expect(error?.exitCode).toBe(0);
      expect(written.mock.calls.map(([text]) => String(text)).join('')).toContain(`Usage: identity${args.length > 0 ? ` ${args.join(' ')}` : ''} `);
    } finally {
      written.mockRestore();
    }
    expect(ran).toEqual([]);
  });

  // `dev seed` was bench tooling and left the production CLI (issue 12): it is an unknown command now.
  it.each(named([['keys', 'bogus'], ['--no-such-option'], ['dev', 'seed'], ['dev', 'seed', '--users', '10'], ['outbox', 'stats', 'extra']]))('`identity %s` is a usage error: exit code 2, nothing run', async (_title, args) => {
    const ran: string[] = [];
    const handlers = new Proxy({} as CliDeps, { get: (_target, name) => () => Promise.resolve(void ran.push(String(name))) });
    const written = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const error = await buildProgram(() => handlers, () => undefined)
        .parseAsync(args, { from: 'user' })
        .then(() => undefined, (e: unknown) => e as CommanderError);
      expect(error?.exitCode).toBe(2);
    } finally {
      written.mockRestore();
    }
    expect(ran).toEqual([]);
  });
});

describe('a command that fails', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.[Symbol.asyncDispose]();
  });

  it('exits 0 with its JSON result when it works', async () => {
    const result = await runCli(['migrate', 'status'], { ...base, DATABASE_URL: db.url });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ pending: [] });
  });

  it('exits 1 with a one-line reason when the database is unreachable', async () => {
    const result = await runCli(['outbox', 'stats'], { ...base, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/identity' });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toBe('');
    const reasons = result.stderr.trim().split('\n').filter((line) => line.startsWith('identity: '));
    expect(reasons).toHaveLength(1);
  });
});
