import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { testEnv } from '../helpers/service.js';
import { verifyOutcome } from '../helpers/sessions.js';

/**
 * Issue 13: two (then three) `identity serve` processes on one database. A revocation
 * committed through A is enforced by B within 1 s (LISTEN/NOTIFY), by a replica started after
 * it (start-up load), and by a replica whose notification connection was cut (it catches up
 * within REVOCATION_RESYNC_SECONDS).
 */

const RESYNC_SECONDS = 3;
let db: TestDatabase;
let env: Record<string, string>;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  db = await createTestDatabase();
  env = testEnv(db, { REVOCATION_RESYNC_SECONDS: String(RESYNC_SECONDS) });
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
}, 120_000);

afterAll(async () => {
  await a?.[Symbol.asyncDispose]();
  await b?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const PASSWORD = 'correct horse battery';
let counter = 0;

/** How many revocation notifications the replica has applied (its propagation histogram's count). */
async function notified(replica: ServerProcess): Promise<number> {
  const text = await (await fetch(`${replica.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('revocation_propagation_seconds_count '));
  return Number(line?.split(' ')[1] ?? 0);
}

async function loggedIn(url: string) {
  const client = connectClient(url);
  const email = `replica.${Date.now()}.${++counter}@example.com`;
  await client.registerUser({ email, password: PASSWORD, firstName: 'Rep', lastName: 'Lica' });
  return { email, ...(await client.authenticate({ email, password: PASSWORD })) };
}

describe('revocation across replicas', () => {
  it('a logout through A is refused by B within 1 s, while another session stays good', async () => {
    const clientA = connectClient(a.apiUrl);
    const clientB = connectClient(b.apiUrl);
    const session = await loggedIn(a.apiUrl);
    const other = await clientA.authenticate({ email: session.email, password: PASSWORD });
    // Twice: a token is remembered on its second check, so it is now in B's verification cache.
    for (let i = 0; i < 2; i++) expect(await verifyOutcome(clientB, session.accessToken)).toBe('ok');
    const notifiedBefore = await notified(b);
    await clientA.logout({ refreshToken: session.refreshToken });
    await expect.poll(() => verifyOutcome(clientB, session.accessToken), { timeout: 1_000, interval: 20 }).toBe('Unauthenticated');
    expect(await verifyOutcome(clientB, other.accessToken)).toBe('ok');
    // B learnt it from the notification (not a resync that happened to fall in that second).
    expect(await notified(b)).toBeGreaterThan(notifiedBefore);
  });

  it('a password change through B is refused by A within 1 s', async () => {
    const clientA = connectClient(a.apiUrl);
    const clientB = connectClient(b.apiUrl);
    const session = await loggedIn(b.apiUrl);
    expect(await verifyOutcome(clientA, session.accessToken)).toBe('ok');
    await clientB.changePassword({ email: session.email, currentPassword: PASSWORD, newPassword: 'purple monkey dishwasher' });
    await expect.poll(() => verifyOutcome(clientA, session.accessToken), { timeout: 1_000, interval: 20 }).toBe('Unauthenticated');
  });

  it('a replica started after the revocation refuses it from its first answer', async () => {
    const revoked = await loggedIn(a.apiUrl);
    const live = await loggedIn(a.apiUrl);
    await connectClient(a.apiUrl).logout({ refreshToken: revoked.refreshToken });
    await using late = await startServerProcess(env);
    const clientC = connectClient(late.apiUrl);
    expect(await verifyOutcome(clientC, revoked.accessToken)).toBe('Unauthenticated');
    expect(await verifyOutcome(clientC, live.accessToken)).toBe('ok');
  });

  it('a replica whose notification connection was cut catches up within REVOCATION_RESYNC_SECONDS', async () => {
    const clientB = connectClient(b.apiUrl);
    const session = await loggedIn(a.apiUrl);
    expect(await verifyOutcome(clientB, session.accessToken)).toBe('ok');
    const cut = await db.knex.raw<{ rows: { terminated: boolean }[] }>(
      'select pg_terminate_backend(pid) as terminated from pg_stat_activity where datname = current_database() and application_name = ?',
      [`identity-revocation-listener ${b.child.pid}`],
    );
    expect(cut.rows).toEqual([{ terminated: true }]);
    // Revoked while B has no LISTEN connection: B never gets this notification.
    await connectClient(a.apiUrl).logout({ refreshToken: session.refreshToken });
    await expect.poll(() => verifyOutcome(clientB, session.accessToken), { timeout: (RESYNC_SECONDS + 1) * 1000, interval: 50 }).toBe('Unauthenticated');
    await expect.poll(() => b.logs.some((line) => line['msg'] === 'revocation listener lost its connection; reconnecting')).toBe(true);
  });
});
