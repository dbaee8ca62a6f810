import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/domain/identity/session.entity.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { KnexSessionRepository } from '../../src/infrastructure/db/session.repository.js';
import { KnexUserRepository } from '../../src/infrastructure/db/user.repository.js';
import { aUser } from '../fakes/user.builder.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/** A login's session is written in one statement, and only while its user is active. */

let db: TestDatabase;
let sessions: KnexSessionRepository;

beforeAll(async () => {
  db = await createTestDatabase();
  sessions = new KnexSessionRepository(db.knex);
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

const POLICY = { idleSeconds: 3_600, maxSeconds: 86_400, reuseGraceSeconds: 0 };

/** A stored user, written as registration writes one (the repository and its mapper). */
async function user(status: UserStatus = UserStatus.Active): Promise<UserId> {
  const stored = aUser({ email: `${randomUUID()}@example.com`, status });
  await new KnexUserRepository(db.knex).save(stored);
  return stored.id;
}

const open = (userId: UserId) => Session.open(userId, '192.0.2.7', new Date(), POLICY);
const rowsOf = async (session: Session) => ({
  sessions: await db.knex('sessions').where({ id: session.id.value }),
  tokens: await db.knex('refresh_tokens').where({ session_id: session.id.value }),
});

describe('KnexSessionRepository.addIfUserActive', () => {
  it('writes the session and its first refresh token for an active user, as the refresh path reads them back', async () => {
    const { session, refreshToken } = open(await user());
    expect(await sessions.addIfUserActive(session)).toBe(true);
    const found = await sessions.findByRefreshTokenForUpdate(refreshToken.digest());
    expect(found?.userActive).toBe(true);
    expect(found?.session.id.value).toBe(session.id.value);
    expect(found?.session.userId.value).toBe(session.userId.value);
    expect(found?.session.clientAddress).toBe('192.0.2.7');
    expect(found?.session.expiresAt.getTime()).toBe(session.expiresAt.getTime());
    expect(found?.session.idleExpiresAt.getTime()).toBe(session.idleExpiresAt.getTime());
    expect(found?.session.revokedAt).toBeUndefined();
    expect((await rowsOf(session)).tokens).toHaveLength(1);
  });

  it('writes nothing for a disabled user or one that does not exist', async () => {
    for (const userId of [await user(UserStatus.Disabled), UserId.fromTrusted(randomUUID())]) {
      const { session } = open(userId);
      expect(await sessions.addIfUserActive(session)).toBe(false);
      expect(await rowsOf(session)).toEqual({ sessions: [], tokens: [] });
    }
  });

  it('waits for a disable in progress and then sees it: no session', async () => {
    const userId = await user();
    const disable = await db.knex.transaction();
    try {
      await disable('users').where({ id: userId.value }).update({ status: UserStatus.Disabled });
      const { session } = open(userId);
      let settled = false;
      const adding = sessions.addIfUserActive(session).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled, 'the share lock waits for the disable to end').toBe(false);
      await disable.commit();
      expect(await adding).toBe(false);
      expect(await rowsOf(session)).toEqual({ sessions: [], tokens: [] });
    } finally {
      if (!disable.isCompleted()) await disable.rollback();
    }
  });

  it('holds the user row until its transaction ends, so a disable that locks the row waits and then sees the session', async () => {
    const userId = await user();
    const { session } = open(userId);
    const login = await db.knex.transaction();
    try {
      expect(await new KnexSessionRepository(login).addIfUserActive(session)).toBe(true);
      let locked = false;
      const disabling = db.knex.transaction(async (trx) => {
        await trx('users').where({ id: userId.value }).forUpdate().first();
        locked = true;
        return trx('sessions').where({ user_id: userId.value }).count<{ n: string }[]>({ n: '*' });
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(locked, 'the disable waits for the login to commit').toBe(false);
      await login.commit();
      expect(Number((await disabling)[0]?.n)).toBe(1);
    } finally {
      if (!login.isCompleted()) await login.rollback();
    }
  });
});
