import http2 from 'node:http2';
import { connect as connectTcp } from 'node:net';
import getPort from 'get-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildService } from '../../src/app/build-service.js';
import { loadConfig } from '../../src/infrastructure/config/load-config.js';
import { connectClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testEnv } from '../helpers/service.js';

/**
 * Issue 12: the service can be assembled without opening its ports, so another server (or a
 * test) can serve its routes; start() opens them; disposing closes every resource.
 */
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

describe('buildService', () => {
  it('assembles everything without listening; its handler serves on a server of our own; start() opens the ports', async () => {
    const [port, adminPort] = [await getPort({ host: '127.0.0.1' }), await getPort({ host: '127.0.0.1' })];
    const service = await buildService(loadConfig(testEnv(db, { PORT: String(port), ADMIN_PORT: String(adminPort) })));
    const server = http2.createServer(service.apiHandler);
    try {
      expect(await accepts(port)).toBe(false);
      expect(await accepts(adminPort)).toBe(false);

      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const own = (server.address() as { port: number }).port;
      const client = connectClient(`http://127.0.0.1:${own}`, 'grpc');
      const { user } = await client.registerUser({ email: 'built@example.org', password: 'a long enough passphrase', firstName: 'B', lastName: 'S' });
      expect(user?.email).toBe('built@example.org');
      expect(await db.knex('users').where({ id: user?.id }).first('id')).toEqual({ id: user?.id });

      expect(await service.start()).toEqual({ apiPort: port, adminPort });
      expect(await accepts(port)).toBe(true);
      expect((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status).toBe(200);
    } finally {
      server.close();
      await service[Symbol.asyncDispose]();
    }
    expect(await accepts(port)).toBe(false);
    expect(await accepts(adminPort)).toBe(false);
    // The pool is closed: the service holds no database connection after it is disposed.
    await expect(service.db.knex.raw('select 1')).rejects.toThrow();
  });
});
