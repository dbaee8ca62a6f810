import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserAlreadyExistsError } from '../../src/domain/identity/identity.errors.js';
import { User } from '../../src/domain/identity/user.entity.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { KnexUserRepository } from '../../src/infrastructure/db/user.repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let repository: KnexUserRepository;

beforeAll(async () => {
  db = await createTestDatabase();
  repository = new KnexUserRepository(db.knex);
});

afterAll(async () => {
  await db?.[Symbol.asyncDispose]();
});

// A syntactically real bcrypt hash; the repository stores it verbatim.
const HASH = '$2b$10$abcdefghijklmnopqrstuuJ0l7m1cN8Zq1o9O8y1Yx3QeV8cX1Wvi';

function email(raw: string): Email {
  const parsed = Email.parse(raw);
  if (!parsed.ok) throw new Error(`bad test email ${raw}: ${parsed.error}`);
  return parsed.value;
}

function name(raw: string): PersonName {
  const parsed = PersonName.parse(raw);
  if (!parsed.ok) throw new Error(`bad test name ${raw}: ${parsed.error}`);
  return parsed.value;
}

/** A new user as RegisterUser builds it; created_at has millisecond precision like timestamptz keeps. */
function newUser(address: string, at = new Date('2024-05-01T10:00:00.123Z')): User {
  return User.register({ email: email(address), firstName: name('Ann'), lastName: name('Lee'), passwordHash: PasswordHash.fromTrusted(HASH) }, at).user;
}

let counter = 0;
const unique = (local: string, domain = 'example.com') => `${local}.${Date.now()}.${++counter}@${domain}`;

async function rowsWithKey(key: string): Promise<number> {
  const [row] = await db.knex('users').where({ email_key: key }).count<{ count: string }[]>({ count: '*' });
  return Number(row?.count);
}

describe('KnexUserRepository on PostgreSQL', () => {
  it('saves a user and reads the same user back by id and by email', async () => {
    const user = newUser(unique('Ann.Lee', 'Example.COM'));
    await repository.save(user);

    const byId = await repository.findById(user.id);
    expect(byId).toBeDefined();
    expect(byId!.id.value).toBe(user.id.value);
    expect(byId!.email.value).toBe(user.email.value);
    expect(byId!.email.value).toMatch(/^Ann\.Lee\..*@example\.com$/);
    expect(byId!.firstName.value).toBe('Ann');
    expect(byId!.lastName.value).toBe('Lee');
    expect(byId!.passwordHash.reveal()).toBe(HASH);
    expect(byId!.status).toBe(UserStatus.Active);
    expect(byId!.createdAt.toISOString()).toBe(user.createdAt.toISOString());
    expect(byId!.updatedAt.toISOString()).toBe(user.updatedAt.toISOString());

    // Looked up by the case-insensitive key, whatever case the caller typed.
    const byEmail = await repository.findByEmail(email(user.email.value.toUpperCase()).key);
    expect(byEmail?.id.value).toBe(user.id.value);
    expect(await repository.existsByEmail(user.email.key)).toBe(true);
    expect(await repository.existsByEmail(email(user.email.value.toUpperCase()).key)).toBe(true);
  });

  it('finds nothing for an unknown id or email', async () => {
    expect(await repository.findById(UserId.generate())).toBeUndefined();
    expect(await repository.findByEmail(email(unique('nobody')).key)).toBeUndefined();
    expect(await repository.existsByEmail(email(unique('nobody')).key)).toBe(false);
  });

  it('keeps unicode names and a non-ASCII local part exactly as given', async () => {
    const address = unique('Zoë.Ärger', 'Bücher.example');
    const user = User.register(
      { email: email(address), firstName: name('Zoë'), lastName: name('Ångström-日本'), passwordHash: PasswordHash.fromTrusted(HASH) },
      new Date(),
    ).user;
    await repository.save(user);
    const found = await repository.findByEmail(email(address).key);
    expect(found?.email.value).toBe(address.replace('Bücher.example', 'bücher.example'));
    expect(found?.firstName.value).toBe('Zoë');
    expect(found?.lastName.value).toBe('Ångström-日本');
  });

  it('updates a user: the new hash, status and updated_at are stored, created_at is kept', async () => {
    const user = newUser(unique('update'));
    await repository.save(user);
    const newHash = '$2b$12$zyxwvutsrqponmlkjihgfeJ0l7m1cN8Zq1o9O8y1Yx3QeV8cX1Wvi';
    const later = new Date('2024-06-01T12:00:00.456Z');
    const rehashed = user.withPasswordHash(PasswordHash.fromTrusted(newHash), later);
    expect(await repository.update(rehashed, user.updatedAt)).toBe(true);

    let found = await repository.findById(user.id);
    expect(found?.passwordHash.reveal()).toBe(newHash);
    expect(found?.updatedAt.toISOString()).toBe(later.toISOString());
    expect(found?.createdAt.toISOString()).toBe(user.createdAt.toISOString());

    const disabled = User.restore({
      id: user.id,
      email: user.email,
      firstName: name('Annie'),
      lastName: user.lastName,
      passwordHash: rehashed.passwordHash,
      status: UserStatus.Disabled,
      createdAt: user.createdAt,
      updatedAt: new Date('2024-07-01T00:00:00.000Z'),
    });
    expect(await repository.update(disabled, rehashed.updatedAt)).toBe(true);
    found = await repository.findByEmail(user.email.key);
    expect(found?.status).toBe(UserStatus.Disabled);
    expect(found?.isActive).toBe(false);
    expect(found?.firstName.value).toBe('Annie');
  });

  it('writes nothing for a user that was never saved', async () => {
    const ghost = newUser(unique('ghost'));
    expect(await repository.update(ghost, ghost.updatedAt)).toBe(false);
    expect(await rowsWithKey(ghost.email.key)).toBe(0);
  });

  it('never overwrites a change made since the user was read (optimistic concurrency)', async () => {
    const user = newUser(unique('race'));
    await repository.save(user);
    const disabledMeanwhile = User.restore({
      id: user.id,
      email: user.email,
      firstName: user.firstName,
      lastName: user.lastName,
      passwordHash: user.passwordHash,
      status: UserStatus.Disabled,
      createdAt: user.createdAt,
      updatedAt: new Date(user.updatedAt.getTime() + 1_000),
    });
    expect(await repository.update(disabledMeanwhile, user.updatedAt)).toBe(true);
    // A rehash based on the copy read before the disable must not re-activate the user.
    const staleRehash = user.withPasswordHash(PasswordHash.fromTrusted('$2b$12$stale'), new Date(user.updatedAt.getTime() + 2_000));
    expect(await repository.update(staleRehash, user.updatedAt)).toBe(false);
    const found = await repository.findById(user.id);
    expect(found?.status).toBe(UserStatus.Disabled);
    expect(found?.passwordHash.reveal()).toBe(user.passwordHash.reveal());
  });
});

describe('case-insensitive uniqueness', () => {
  it.each([
    ['ASCII', 'Ann@x.io', 'ann@X.IO'],
    ['a non-ASCII local part', '\u00c4rger@x.io', '\u00e4rger@x.io'],
    ['a decomposed (NFD) spelling of the same address', 'A\u0308rger.nfd@x.io', '\u00e4rger.NFD@X.io'],
    ['Greek capitals with a final sigma', '\u03a3\u03a9\u039a\u03a1\u0391\u03a4\u0397\u03a3@x.io', '\u03c3\u03c9\u03ba\u03c1\u03b1\u03c4\u03b7\u03c2@x.io'],
  ])('treats %s as one user: the second save is UserAlreadyExistsError', async (_label, first, second) => {
    const firstUser = newUser(first);
    await repository.save(firstUser);
    const error = await repository.save(newUser(second)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserAlreadyExistsError);

    const key = email(first).key;
    expect(email(second).key).toBe(key);
    expect(await rowsWithKey(key)).toBe(1);
    const found = await repository.findByEmail(email(second).key);
    expect(found?.id.value).toBe(firstUser.id.value);
    // The address keeps the spelling it was registered with (NFC, domain lower-cased).
    expect(found?.email.value).toBe(email(first).value);
    expect(await repository.existsByEmail(email(second).key)).toBe(true);
  });

  it('reports a duplicate from inside a transaction as UserAlreadyExistsError too', async () => {
    const address = unique('Trx');
    await repository.save(newUser(address));
    const error = await db.knex
      .transaction((trx) => new KnexUserRepository(trx).save(newUser(address.toUpperCase())))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserAlreadyExistsError);
    expect(await rowsWithKey(email(address).key)).toBe(1);
  });
});

describe('concurrent saves of the same email', () => {
  it('lets exactly one of many concurrent saves (in any case) win; the rest are UserAlreadyExistsError', async () => {
    const local = `Race.${Date.now()}`;
    const spellings = [`${local}@race.io`, `${local.toUpperCase()}@RACE.IO`, `${local.toLowerCase()}@Race.Io`];
    const attempts = Array.from({ length: 24 }, (_, i) => newUser(spellings[i % spellings.length]!));
    const outcomes = await Promise.allSettled(attempts.map((user) => repository.save(user)));

    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(attempts.length - 1);
    for (const failure of lost) expect(failure.reason).toBeInstanceOf(UserAlreadyExistsError);

    const key = email(spellings[0]!).key;
    expect(await rowsWithKey(key)).toBe(1);
    const winner = attempts[outcomes.findIndex((o) => o.status === 'fulfilled')]!;
    expect((await repository.findByEmail(key))?.id.value).toBe(winner.id.value);
  });

  it('lets exactly one win when each save runs in its own transaction, as RegisterUser does', async () => {
    const address = unique('RaceTrx');
    const attempts = Array.from({ length: 8 }, (_, i) => newUser(i % 2 === 0 ? address : address.toUpperCase()));
    const outcomes = await Promise.allSettled(
      attempts.map((user) => db.knex.transaction((trx) => new KnexUserRepository(trx).save(user))),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(UserAlreadyExistsError);
    expect(await rowsWithKey(email(address).key)).toBe(1);
  });
});
