import { randomUUID } from 'node:crypto';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { grpc, grpcError, GrpcIdentityClient } from '../helpers/clients.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, testEnv, type TestService } from '../helpers/service.js';
import { countingHasher } from '../helpers/counting-hasher.js';

/**
 * Passwords at bcrypt's 72-byte edge (refused past it, never truncated), NFKC equivalence,
 * and the upgrade of an old, cheaper hash on a successful login.
 */

const { calls, wrap: countCalls } = countingHasher();

let db: TestDatabase;
let service: TestService;
let client: GrpcIdentityClient;

beforeAll(async () => {
  db = await createTestDatabase();
  // BCRYPT_COST=11, one above the test default, so that a cost-10 hash is "old". Throttling is
  // out of the way: these tests fail logins on purpose, many times.
  service = await startTestService(testEnv(db, { BCRYPT_COST: '11', LOGIN_THROTTLE: 'off' }), { wrapHasher: countCalls });
  client = new GrpcIdentityClient(service.url);
});

afterAll(async () => {
  client?.close();
  await service?.[Symbol.asyncDispose]();
  await db?.[Symbol.asyncDispose]();
});

beforeEach(() => {
  calls.hash = 0;
  calls.verify = 0;
});

let counter = 0;
const uniqueEmail = (prefix: string) => `${prefix}.${Date.now()}.${++counter}@example.com`;
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

const register = (email: string, password: string) => client.registerUser({ email, password, first_name: 'Pass', last_name: 'Word' });

async function expectRefused(email: string, password: string) {
  const before = await db.knex('users').count({ n: '*' });
  const error = await grpcError(register(email, password));
  expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(error.details).toMatch(/^password: /);
  expect(await db.knex('users').count({ n: '*' })).toEqual(before);
  expect(await db.knex('users').where({ email_key: email }).first()).toBeUndefined();
  return error.details;
}

async function expectLogin(email: string, password: string, ok: boolean) {
  if (ok) {
    await expect(client.authenticate({ email, password })).resolves.toHaveProperty('token_type', 'Bearer');
  } else {
    expect((await grpcError(client.authenticate({ email, password }))).code).toBe(grpc.status.UNAUTHENTICATED);
  }
}

describe('the 72-byte limit', () => {
  it('a 73-byte ASCII password (72 + one more) is refused at RegisterUser with INVALID_ARGUMENT', async () => {
    const password = `${'k'.repeat(72)}z`;
    expect(bytes(password)).toBe(73);
    expect(await expectRefused(uniqueEmail('p73'), password)).toBe('password: must be at most 72 bytes in UTF-8');
    expect(calls.hash).toBe(0);
  });

  it('a 72-byte ASCII password works, and its last byte matters at Authenticate', async () => {
    const email = uniqueEmail('p72');
    const password = `${'Q7'.repeat(35)}ab`;
    expect(bytes(password)).toBe(72);
    await register(email, password);
    await expectLogin(email, password, true);
    await expectLogin(email, `${password.slice(0, 71)}c`, false); // only byte 72 differs
    await expectLogin(email, `${password.slice(0, 71)}`, false); // byte 72 missing
    await expectLogin(email, `X${password.slice(1)}`, false); // only byte 1 differs
  });

  it('at Authenticate a password past 72 bytes is INVALID_ARGUMENT, never a match on its first 72 bytes', async () => {
    const email = uniqueEmail('p72auth');
    const password = 'v'.repeat(72);
    await register(email, password);
    const error = await grpcError(client.authenticate({ email, password: `${password}extra` }));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('password: must be at most 72 bytes in UTF-8');
    expect(calls.verify).toBe(0);
  });

  it.each([
    ['a 2-byte character', 'é', 71],
    ['a 3-byte character', '€', 70],
    ['a 4-byte emoji', '😀', 69],
  ])('a password with %s crossing byte 72 is refused; ending exactly at byte 72 it works', async (_what, char, asciiBefore) => {
    const crossing = `${'m'.repeat(asciiBefore)}${char}`;
    expect(bytes(crossing)).toBe(73);
    expect(await expectRefused(uniqueEmail('cross'), crossing)).toBe('password: must be at most 72 bytes in UTF-8');

    const email = uniqueEmail('fits');
    const fits = `${'m'.repeat(asciiBefore - 1)}${char}`;
    expect(bytes(fits)).toBe(72);
    await register(email, fits);
    await expectLogin(email, fits, true);
  });

  it('a 4-byte emoji in bytes 69-72 is checked to its last byte', async () => {
    const email = uniqueEmail('emoji');
    const password = `${'e'.repeat(68)}😀`; // F0 9F 98 80
    await register(email, password);
    await expectLogin(email, password, true);
    await expectLogin(email, `${'e'.repeat(68)}😁`, false); // F0 9F 98 81: only byte 72 differs
  });

  it('the limit applies after NFKC: a short input that expands past 72 bytes is refused', async () => {
    const expanding = 'ok\uFDFA\uFDFA\uFDFA'; // 11 bytes typed; U+FDFA is 33 bytes after NFKC
    expect(bytes(expanding)).toBeLessThanOrEqual(72);
    expect(bytes(expanding.normalize('NFKC'))).toBeGreaterThan(72);
    expect(await expectRefused(uniqueEmail('nfkc-long'), expanding)).toBe('password: must be at most 72 bytes in UTF-8');
  });

  it('...and a long input that shrinks to 72 bytes or fewer after NFKC is accepted', async () => {
    const email = uniqueEmail('nfkc-short');
    const ligatures = '\uFB01'.repeat(30); // 'ﬁ' is 3 bytes, 'fi' 2: 90 bytes typed, 60 after NFKC
    expect(bytes(ligatures)).toBe(90);
    await register(email, ligatures);
    await expectLogin(email, 'fi'.repeat(30), true);
  });
});

describe('NFKC equivalents', () => {
  it.each([
    ['the ﬁ ligature, then plain fi', 'my \uFB01nal \uFB01sh swims', 'my final fish swims'],
    ['plain fi, then the ﬁ ligature', 'my final fish swims', 'my \uFB01nal \uFB01sh swims'],
    ['full-width letters', '\uFF53\uFF45\uFF43\uFF52\uFF45\uFF54 \uFF47\uFF41\uFF54\uFF45 42', 'secret gate 42'],
    ['decomposed é (NFD)', 'cafe\u0301 au lait noir', 'café au lait noir'],
    ['superscript two', 'area is x\u00B2 + y\u00B2', 'area is x2 + y2'],
  ])('%s authenticate as the same password', async (_what, registered, presented) => {
    expect(registered).not.toBe(presented);
    const email = uniqueEmail('nfkc');
    await register(email, registered);
    await expectLogin(email, presented, true);
    await expectLogin(email, registered, true);
  });

  it('characters NFKC keeps apart stay different passwords', async () => {
    const email = uniqueEmail('distinct');
    await register(email, 'straße im regen 1');
    await expectLogin(email, 'strasse im regen 1', false);
    await expectLogin(email, 'STRASSE IM REGEN 1', false);
  });
});

describe('the rest of the password policy', () => {
  it.each([
    ['shorter than 8 characters', 'short7!', 'password: must be at least 8 characters'],
    ['7 emoji (28 bytes, 7 characters)', '😀'.repeat(7), 'password: must be at least 8 characters'],
    ['a common password', 'password1', 'password: is too common'],
    ['a common password in capitals', 'PASSWORD1', 'password: is too common'],
    ['containing NUL', 'long enough\u0000tail', 'password: must not contain NUL'],
    ['a lone surrogate', 'long enough\uD800tail', 'password: must be valid UTF-8'],
  ])('refuses a password %s', async (_what, password, message) => {
    expect(await expectRefused(uniqueEmail('policy'), password)).toBe(message);
  });

  it('refuses the email as its own password, compared case-insensitively', async () => {
    const email = uniqueEmail('self');
    expect(await expectRefused(email, email.toUpperCase())).toBe('password: must not equal the email');
  });

  it('accepts 8 emoji (8 characters) and a password of only spaces', async () => {
    for (const password of ['😀'.repeat(8), ' '.repeat(12)]) {
      const email = uniqueEmail('odd');
      await register(email, password);
      await expectLogin(email, password, true);
    }
  });
});

describe('rehash on login', () => {
  const PASSWORD = 'upgrade me please 10';

  /** A user stored as an older release would have: a cost-10 bcrypt hash. */
  async function insertCost10User(email: string): Promise<{ id: string; hash: string }> {
    const id = randomUUID();
    const hash = bcrypt.hashSync(PASSWORD, 10);
    const at = new Date(Date.now() - 60_000);
    await db.knex('users').insert({
      id,
      email,
      email_key: email.toLowerCase(),
      password_hash: hash,
      first_name: 'Old',
      last_name: 'Hash',
      status: 'active',
      created_at: at,
      updated_at: at,
    });
    return { id, hash };
  }
  const storedHash = async (id: string): Promise<string> => ((await db.knex('users').where({ id }).first()) as { password_hash: string }).password_hash;

  it('a successful login stores a new cost-11 hash of the same password', async () => {
    const email = uniqueEmail('rehash');
    const { id, hash } = await insertCost10User(email);
    expect(hash).toMatch(/^\$2b\$10\$/);

    await expectLogin(email, PASSWORD, true);
    const upgraded = await storedHash(id);
    expect(upgraded).toMatch(/^\$2b\$11\$/);
    expect(bcrypt.compareSync(PASSWORD, upgraded)).toBe(true);
    expect(calls).toEqual({ verify: 1, hash: 1 });

    // The next login uses the new hash and does not hash again.
    await expectLogin(email, PASSWORD, true);
    expect(await storedHash(id)).toBe(upgraded);
    expect(calls).toEqual({ verify: 2, hash: 1 });
  });

  it('a failed login does not rehash', async () => {
    const email = uniqueEmail('norehash');
    const { id, hash } = await insertCost10User(email);
    await expectLogin(email, `${PASSWORD}!`, false);
    expect(await storedHash(id)).toBe(hash);
    expect(calls.hash).toBe(0);
  });

  it('a disabled user with the right password is not rehashed either', async () => {
    const email = uniqueEmail('disabledrehash');
    const { id, hash } = await insertCost10User(email);
    await db.knex('users').where({ id }).update({ status: 'disabled' });
    await expectLogin(email, PASSWORD, false);
    expect(await storedHash(id)).toBe(hash);
    expect(calls.hash).toBe(0);
  });

  it('a hash already at a higher cost is left alone', async () => {
    const email = uniqueEmail('higher');
    const { id } = await insertCost10User(email);
    const stronger = bcrypt.hashSync(PASSWORD, 12);
    await db.knex('users').where({ id }).update({ password_hash: stronger });
    await expectLogin(email, PASSWORD, true);
    expect(await storedHash(id)).toBe(stronger);
    expect(calls.hash).toBe(0);
  });
});
