import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';

/**
 * The email reproductions of the hostile-clients review, through the real server: one key
 * function (NFC, lower-case, NFC) for RegisterUser and Authenticate.
 */

const PASSWORD = 'one key for both paths 42';

let db: TestDatabase;
let service: TestService;
let client: GrpcIdentityClient;

beforeAll(async () => {
  db = await createTestDatabase();
  service = await startTestService(testEnv(db));
  client = new GrpcIdentityClient(service.url);
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

const register = (email: string) => client.registerUser({ email, password: PASSWORD, first_name: 'Uni', last_name: 'Code' });

describe('registration and login agree on the key', () => {
  it('zed@xT\\u0308.com registers and then logs in with the same string (and the composed one)', async () => {
    const registered = await register('zed@xT\u0308.com');
    for (const typed of ['zed@xT\u0308.com', 'zed@x\u1E97.com', 'ZED@XT\u0308.COM']) {
      const login = await connectClient(service.url).authenticate({ email: typed, password: PASSWORD });
      expect(login.user?.id, JSON.stringify(typed)).toBe(registered['user']['id']);
    }
  });

  it('aT\\u0308@example.org and a\\u1E97@example.org are one user: the second is ALREADY_EXISTS', async () => {
    await register('aT\u0308@example.org');
    expect((await grpcError(register('a\u1E97@example.org'))).code).toBe(grpc.status.ALREADY_EXISTS);
    expect(await db.knex('users').where({ email_key: 'a\u1E97@example.org' }).count<{ count: string }[]>({ count: '*' })).toEqual([{ count: '1' }]);
  });
});
