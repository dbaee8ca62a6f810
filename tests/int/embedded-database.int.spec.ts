import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { runCli, startServerProcess, type ServerProcess } from '../helpers/process.js';

/**
 * The embedded default: no DATABASE_URL, so `identity serve` runs PGlite under DATA_DIR.
 * Each server here is a real process; PGlite takes a few seconds to start, more on a busy machine.
 */
const START_TIMEOUT_MS = 120_000;

let dataDir: string;
let env: Record<string, string>;
const started: ServerProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'identity-embedded-'));
  env = {
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    ADMIN_PORT: '0',
    LOG_LEVEL: 'info',
    BCRYPT_COST: '10',
    HASH_WORKERS: '1',
    // The same key for every process on this directory, so the signing key stays readable.
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // Events stay in the embedded outbox; nothing goes to the shared NATS.
    OUTBOX_RELAY: 'off',
    SHUTDOWN_GRACE_SECONDS: '5',
  };
});

afterAll(async () => {
  for (const server of started) await server[Symbol.asyncDispose]();
  await rm(dataDir, { recursive: true, force: true });
  expect(existsSync(dataDir)).toBe(false);
});

async function start(): Promise<ServerProcess> {
  const server = await startServerProcess(env, START_TIMEOUT_MS);
  started.push(server);
  return server;
}

async function stop(server: ServerProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill('SIGTERM');
  return server.exited;
}

const PASSWORD = 'correct horse battery';
const EMAIL = `Embedded.${Date.now()}@Example.com`;

describe('the embedded PGlite database (no DATABASE_URL)', { timeout: 240_000 }, () => {
  let first: ServerProcess;
  let userId: string;

  it('starts on PGlite, migrates itself and warns once that this is for development', async () => {
    first = await start();
    const warnings = first.logs.filter((line) => Number(line['level']) >= 40);
    expect(warnings, JSON.stringify(warnings)).toHaveLength(1);
    expect(String(warnings[0]!['msg'])).toMatch(/development/);
    expect(String(warnings[0]!['msg'])).toMatch(/PGlite|embedded/);
    expect(warnings[0]!['dataDir']).toBe(dataDir);
    expect(existsSync(join(dataDir, 'pgdata'))).toBe(true);
    // It holds the directory while it runs.
    expect((await readFile(join(dataDir, 'identity.pid'), 'utf8')).trim()).toBe(`${first.child.pid}@${hostname()}`);

    const ready = await fetch(`${first.adminUrl}/readyz`);
    expect(ready.status, await ready.clone().text()).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks['database']).toBe('ok');
  });

  it('serves RegisterUser and Authenticate', async () => {
    const client = new GrpcIdentityClient(first.apiUrl);
    try {
      const registered = await client.registerUser({ email: EMAIL, password: PASSWORD, first_name: 'Em', last_name: 'Bedded' });
      expect(registered['user']).toMatchObject({ email: EMAIL.replace('Example.com', 'example.com'), status: 'USER_STATUS_ACTIVE' });
      userId = registered['user']['id'];
      const auth = await client.authenticate({ email: EMAIL.toLowerCase(), password: PASSWORD });
      expect(auth['user']['id']).toBe(userId);
      // Case-insensitive uniqueness holds on PGlite too.
      const again = await grpcError(client.registerUser({ email: EMAIL.toUpperCase(), password: PASSWORD, first_name: 'Em', last_name: 'Bedded' }));
      expect(again.code).toBe(grpc.status.ALREADY_EXISTS);
    } finally {
      client.close();
    }
  });

  it('refuses a second process on the same DATA_DIR with a message naming the directory, and a non-zero exit', async () => {
    const second = await runCli(['serve'], env, START_TIMEOUT_MS);
    expect(second.signal).toBeNull();
    expect(second.code).not.toBe(0);
    expect(second.code).not.toBeNull();
    expect(second.stderr).toContain(dataDir);
    expect(second.stderr).toMatch(/in use/);
    expect(second.stderr).toContain(String(first.child.pid));
    // The first process is untouched and still serves.
    expect((await readFile(join(dataDir, 'identity.pid'), 'utf8')).trim()).toBe(`${first.child.pid}@${hostname()}`);
    expect((await fetch(`${first.adminUrl}/healthz`)).status).toBe(200);
  });

  it('stops on SIGTERM with exit code 0 and releases the directory', async () => {
    expect(await stop(first)).toEqual({ code: 0, signal: null });
    expect(first.logs.some((line) => line['msg'] === 'stopped')).toBe(true);
    expect(existsSync(join(dataDir, 'identity.pid'))).toBe(false);
  });

  it('starts again on the same directory with the user still there', async () => {
    const next = await start();
    // An existing database: no second warning beyond the one about the embedded database.
    expect(next.logs.filter((line) => Number(line['level']) >= 40)).toHaveLength(1);
    const client = new GrpcIdentityClient(next.apiUrl);
    try {
      const auth = await client.authenticate({ email: EMAIL, password: PASSWORD });
      expect(auth['user']['id']).toBe(userId);
      const verified = await client.verifyToken({ token: auth['access_token'] });
      expect(verified['user_id']).toBe(userId);
      const again = await grpcError(client.registerUser({ email: EMAIL.toLowerCase(), password: PASSWORD, first_name: 'Em', last_name: 'Bedded' }));
      expect(again.code).toBe(grpc.status.ALREADY_EXISTS);
    } finally {
      client.close();
    }
    expect(await stop(next)).toEqual({ code: 0, signal: null });
  });

  it('takes over the directory of a process that died without cleaning up', async () => {
    const crashed = await start();
    crashed.child.kill('SIGKILL');
    expect(await crashed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(existsSync(join(dataDir, 'identity.pid'))).toBe(true); // left behind

    const next = await start();
    expect((await readFile(join(dataDir, 'identity.pid'), 'utf8')).trim()).toBe(`${next.child.pid}@${hostname()}`);
    const client = new GrpcIdentityClient(next.apiUrl);
    try {
      const auth = await client.authenticate({ email: EMAIL, password: PASSWORD });
      expect(auth['user']['id']).toBe(userId);
    } finally {
      client.close();
    }
    expect(await stop(next)).toEqual({ code: 0, signal: null });
  });

  it('respects a lock held from another host (a container on a shared volume), naming it', async () => {
    await writeFile(join(dataDir, 'identity.pid'), '1@another-container');
    try {
      const refused = await runCli(['serve'], env, 120_000);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('another-container');
      expect(refused.stderr).toContain(dataDir);
    } finally {
      await rm(join(dataDir, 'identity.pid'), { force: true });
    }
  });
});
