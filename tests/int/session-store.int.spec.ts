import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../src/infrastructure/db/session.store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/** Issue 13: ended sessions are deleted in small batches, with their refresh tokens; live ones stay. */

let db: TestDatabase;
let userId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  userId = randomUUID();
  const now = new Date();
  await db.knex('users').insert({ id: userId, email: `${userId}@x.io`, email_key: `${userId}@x.io`, password_hash: 'x', first_name: 'A', last_name: 'B', status: 'active', created_at: now, updated_at: now });
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

const HOUR = 3_600_000;

async function session(ends: { idle: number; absolute: number; revoked?: number }) {
  const id = randomUUID();
  const now = Date.now();
  await db.knex('sessions').insert({
    id,
    user_id: userId,
    refresh_token_hash: Buffer.from(randomUUID()),
    created_at: new Date(now - 10 * HOUR),
    last_refreshed_at: new Date(now - 10 * HOUR),
    idle_expires_at: new Date(now + ends.idle),
    expires_at: new Date(now + ends.absolute),
    revoked_at: ends.revoked === undefined ? null : new Date(now + ends.revoked),
    revoked_reason: ends.revoked === undefined ? null : 'logout',
    client_address: '127.0.0.1',
  });
  await db.knex('refresh_tokens').insert({ token_hash: Buffer.from(randomUUID()), session_id: id, issued_at: new Date() });
  return id;
}

describe('SessionStore.deleteEndedBefore', () => {
  it('deletes, at most `limit` at a time, sessions that ended (idle, absolute or revoked) before the cutoff, and keeps the rest', async () => {
    const ended: string[] = [
      await session({ idle: -3 * HOUR, absolute: HOUR }), // idle long ago
      await session({ idle: HOUR, absolute: -3 * HOUR }), // past its absolute end
      await session({ idle: HOUR, absolute: HOUR, revoked: -3 * HOUR }), // revoked long ago
    ];
    const kept = [
      await session({ idle: HOUR, absolute: 2 * HOUR }), // live
      await session({ idle: HOUR, absolute: HOUR, revoked: -1_000 }), // revoked a second ago: its tokens may still be out
      await session({ idle: -1_000, absolute: HOUR }), // ended within the horizon
    ];
    const store = new SessionStore(db.knex);
    const cutoff = new Date(Date.now() - 2 * HOUR);
    expect(await store.deleteEndedBefore(cutoff, 2)).toBe(2);
    expect(await store.deleteEndedBefore(cutoff, 2)).toBe(1);
    expect(await store.deleteEndedBefore(cutoff, 2)).toBe(0);
    const left = (await db.knex('sessions').pluck('id')) as string[];
    expect(left.sort()).toEqual([...kept].sort());
    expect(((await db.knex('refresh_tokens').pluck('session_id')) as string[]).sort()).toEqual([...kept].sort());
    expect(left.some((id) => ended.includes(id))).toBe(false);
  });
});
