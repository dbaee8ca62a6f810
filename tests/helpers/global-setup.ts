import { execFileSync } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

/**
 * The integration and end-to-end suites need the machine's PostgreSQL and NATS JetStream.
 * When one is missing the run stops here with one line saying which and how to start it:
 * a missing service fails the suite, it never skips it.
 */
export const ADMIN_DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';

const START_POSTGRES = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
const START_NATS =
  'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log';

export default async function setup(project: TestProject): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${ADMIN_DATABASE_URL} (${String(error)}); start it with: ${START_POSTGRES}`, { cause: error });
  } finally {
    await client.end().catch(() => undefined);
  }
  const nats = new URL(NATS_URL);
  if (!(await reachable(nats.hostname, Number(nats.port || 4222)))) {
    throw new Error(`NATS is not reachable at ${NATS_URL}; start it with: ${START_NATS}`);
  }
  try {
    execFileSync('nats-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('nats-server is not on PATH (the fault tests run their own); install the Debian package nats-server');
  }
  project.provide('adminDatabaseUrl', ADMIN_DATABASE_URL);
  project.provide('natsUrl', NATS_URL);
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    natsUrl: string;
  }
}
