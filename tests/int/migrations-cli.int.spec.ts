import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { migrationSource } from '../../src/infrastructure/db/migrations/index.js';
import { migrationStatus } from '../../src/infrastructure/db/migrator.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli, type CliResult } from '../helpers/process.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

const ALL = [
  '0001-create-users',
  '0002-create-outbox',
  '0003-create-signing-keys',
  '0004-create-login-attempts',
  '0005-notify-outbox-commits',
  '0006-rekey-emails',
  '0007-create-sessions',
  '0008-user-management',
];
const LAST = ALL.at(-1)!;

let db: TestDatabase;
let service: TestService | undefined;

/**
 * The test database arrives migrated in one batch. Applied one migration per batch instead,
 * as successive deployments would leave it, `migrate down` takes back only the newest one,
 * which is what an operator rolling back a release does.
 */
beforeAll(async () => {
  db = await createTestDatabase();
  await db.knex.migrate.rollback({ migrationSource }, true);
  for (const _name of ALL.slice(0, -1)) await db.knex.migrate.up({ migrationSource });
});

afterAll(async () => {
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const cliEnv = () => ({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' });

/** A successful command: exit 0, nothing on stderr, one JSON document on stdout. */
function json(result: CliResult): unknown {
  expect(result.stderr, result.stderr).toBe('');
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

async function readyz(): Promise<{ status: number; body: { ready: boolean; checks: Record<string, string> } }> {
  const response = await fetch(`${service!.adminUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; checks: Record<string, string> } };
}

// Every CLI run starts node with tsx; on a shared 2-core machine that can take a while.
describe('identity migrate', { timeout: 180_000 }, () => {
  it('status lists the applied and the pending migrations as JSON', async () => {
    expect(json(await runCli(['migrate', 'status'], cliEnv()))).toEqual({ applied: ALL.slice(0, -1), pending: [LAST] });
  });

  it('up applies what is pending, and a second up applies nothing', async () => {
    expect(json(await runCli(['migrate', 'up'], cliEnv()))).toEqual({ applied: [LAST] });
    expect(json(await runCli(['migrate', 'up'], cliEnv()))).toEqual({ applied: [] });
    expect(json(await runCli(['migrate', 'status'], cliEnv()))).toEqual({ applied: ALL, pending: [] });
    expect(await db.knex.schema.hasTable('login_attempts')).toBe(true);
  });

  it('the service is ready while the migrations are current', async () => {
    service = await startTestService(testEnv(db));
    const { status, body } = await readyz();
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.checks['database']).toBe('ok');
  });

  it('down rolls back the last batch; the running service then answers /readyz with 503', async () => {
    expect(json(await runCli(['migrate', 'down'], cliEnv()))).toEqual({ reverted: [LAST] });
    // The last migration (0008, user management) is undone; older batches (0007's sessions) stay.
    const erasedCheck = await db.knex.raw<{ rows: unknown[] }>("select 1 from pg_constraint where conname = 'users_erased_check'");
    expect(erasedCheck.rows).toHaveLength(0);
    expect(await db.knex.schema.hasColumn('users', 'disabled_reason')).toBe(false);
    expect(await db.knex.schema.hasTable('sessions')).toBe(true);
    const trigger = await db.knex.raw<{ rows: unknown[] }>("select 1 from pg_trigger where tgname = 'outbox_notify'");
    expect(trigger.rows).toHaveLength(1);
    expect(await db.knex.schema.hasTable('users')).toBe(true);
    expect(json(await runCli(['migrate', 'status'], cliEnv()))).toEqual({ applied: ALL.slice(0, -1), pending: [LAST] });

    // /readyz answers from a probe cached for up to a second; the body names the state only
    // (the missing migration goes to the log).
    await vi.waitFor(async () => expect((await readyz()).status).toBe(503), { timeout: 10_000, interval: 200 });
    const { body } = await readyz();
    expect(body).toEqual({ ready: false, checks: { database: 'migrations_pending', signing_key: 'ok' } });
  });

  it('up brings the service back to ready (200) without a restart', async () => {
    expect(json(await runCli(['migrate', 'up'], cliEnv()))).toEqual({ applied: [LAST] });
    await vi.waitFor(async () => expect((await readyz()).status).toBe(200), { timeout: 10_000, interval: 200 });
    const { body } = await readyz();
    expect(body.checks['database']).toBe('ok');
  });

  it('`migrate` alone means up', async () => {
    expect(json(await runCli(['migrate'], cliEnv()))).toEqual({ applied: [] });
  });

  it('a down of a database migrated in one batch takes every table away, and up restores them all', async () => {
    await service?.[Symbol.asyncDispose]();
    service = undefined;
    await using fresh = await createTestDatabase();
    const env = { DATABASE_URL: fresh.url, LOG_LEVEL: 'warn' };
    expect(json(await runCli(['migrate', 'down'], env))).toEqual({ reverted: [...ALL].reverse() });
    expect(json(await runCli(['migrate', 'status'], env))).toEqual({ applied: [], pending: ALL });
    expect(await fresh.knex.schema.hasTable('users')).toBe(false);
    expect(json(await runCli(['migrate', 'up'], env))).toEqual({ applied: ALL });
    expect(await migrationStatus(fresh.knex)).toEqual({ applied: ALL, pending: [] });
  });

  it('serve and the other commands refuse a database without the schema, say how to migrate it, and change nothing', async () => {
    await using empty = await createTestDatabase();
    await empty.knex.migrate.rollback({ migrationSource }, true);
    await empty.knex.schema.dropTable('knex_migrations');
    await empty.knex.schema.dropTable('knex_migrations_lock');
    for (const args of [['serve'], ['outbox', 'stats'], ['keys', 'list']]) {
      const result = await runCli(args, testEnv(empty, { LOG_LEVEL: 'warn' }));
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(1);
      expect(result.stdout).toBe('');
      const reason = result.stderr.trim().split('\n').at(-1);
      expect(reason).toBe(`identity: the database lacks migrations ${ALL.join(', ')}: run \`identity migrate up\` first, or set MIGRATE_ON_START=true`);
    }
    const tables = await empty.knex.raw<{ rows: unknown[] }>("select 1 from information_schema.tables where table_schema = 'public'");
    expect(tables.rows).toHaveLength(0);
  });

  it('fails with exit 2 and a usage message for an unknown direction', async () => {
    const result = await runCli(['migrate', 'sideways'], cliEnv());
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/sideways/);
  });

  it('fails with exit 1, one reason on stderr and nothing on stdout when the database is unreachable', async () => {
    const result = await runCli(['migrate', 'status'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing_here', LOG_LEVEL: 'warn' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(''); // no half output, no driver noise where the JSON result goes
    const lines = result.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^identity: .*ECONNREFUSED/);
    // Anything else on stderr is a structured log line, not a bare stack trace.
    for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
  });
});
