import { describe, expect, it, vi } from 'vitest';
import { requireValid } from '../../src/application/field-validation.js';
import type { UnitOfWork } from '../../src/application/ports/unit-of-work.port.js';
import { Authenticate } from '../../src/application/use-cases/authenticate.use-case.js';
import { RegisterUser } from '../../src/application/use-cases/register-user.use-case.js';
import { InvalidArgumentError } from '../../src/domain/identity/identity.errors.js';
import { PasswordPolicy } from '../../src/domain/identity/password-policy.js';
import type { PasswordHasher } from '../../src/application/ports/password-hasher.port.js';
import type { TokenProvider } from '../../src/application/ports/token-provider.port.js';
import type { UserRepository } from '../../src/application/ports/user.repository.port.js';
import { User } from '../../src/domain/identity/user.entity.js';
import { UserStatus } from '../../src/domain/identity/user-status.js';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';
import { err, ok } from '../../src/domain/shared/result.js';
import { userMapper, type UserRow } from '../../src/infrastructure/db/user.mapper.js';

const HASH = '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';

function parsed<T>(result: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

const newUser = () => ({
  email: parsed(Email.parse('Ann.Lee@Example.COM')),
  firstName: parsed(PersonName.parse('Ann')),
  lastName: parsed(PersonName.parse('Lee')),
  passwordHash: PasswordHash.fromTrusted(HASH),
});

describe('requireValid', () => {
  it('returns every value when all fields parsed', () => {
    const values = requireValid({ email: ok('a@b.c'), first_name: ok(42) });
    expect(values).toEqual({ email: 'a@b.c', first_name: 42 });
  });

  it('collects every violation, in field order, under the given (proto) field names', () => {
    let caught: unknown;
    try {
      requireValid({ email: err('must contain exactly one @'), password: ok('x'), first_name: err('is required'), last_name: err('too long') });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError);
    const error = caught as InvalidArgumentError;
    expect(error.violations).toEqual([
      { field: 'email', description: 'must contain exactly one @' },
      { field: 'first_name', description: 'is required' },
      { field: 'last_name', description: 'too long' },
    ]);
    expect(error.message).toBe('email: must contain exactly one @; first_name: is required; last_name: too long');
  });
});

describe('use cases name every bad field with the proto names, before any work', () => {
  const unusedUow: UnitOfWork = { run: () => Promise.reject(new Error('no transaction expected')) };
  const users = {
    findById: vi.fn(),
    findByIds: vi.fn(),
    findByIdForUpdate: vi.fn(),
    list: vi.fn(),
    findByEmail: vi.fn(),
    existsByEmail: vi.fn(),
    save: vi.fn(),
    update: vi.fn(),
  } satisfies UserRepository;
  const hasher = { hash: vi.fn(), verify: vi.fn(), needsRehash: vi.fn() } satisfies PasswordHasher;
  const clock = { now: () => new Date('2026-01-01T00:00:00Z') };
  const audit = { record: vi.fn() };

  async function invalidArgument(run: () => Promise<unknown>): Promise<InvalidArgumentError> {
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }

  it('RegisterUser reports email, password, first_name and last_name together', async () => {
    const register = new RegisterUser({
      uow: unusedUow,
      users,
      hasher,
      passwordPolicy: new PasswordPolicy({ minLength: 8, commonPasswords: new Set(['password1']) }),
      clock,
      audit,
    });
    const error = await invalidArgument(() =>
      register.execute({ email: 'not-an-email', password: 'short', firstName: ' ', lastName: 'x'.repeat(51), clientAddress: '203.0.113.1' }),
    );
    expect(error.violations.map((v) => v.field)).toEqual(['email', 'password', 'first_name', 'last_name']);
    expect(error.violations.every((v) => v.description.length > 0)).toBe(true);
    expect(users.existsByEmail).not.toHaveBeenCalled();
    expect(hasher.hash).not.toHaveBeenCalled();
  });

  it('RegisterUser names only the bad field when the others are fine', async () => {
    const register = new RegisterUser({
      uow: unusedUow,
      users,
      hasher,
      passwordPolicy: new PasswordPolicy({ minLength: 8, commonPasswords: new Set(['password1']) }),
      clock,
      audit,
    });
    const error = await invalidArgument(() =>
      register.execute({ email: 'ann@x.io', password: 'password1', firstName: 'Ann', lastName: 'Lee', clientAddress: '203.0.113.1' }),
    );
    expect(error.violations).toEqual([{ field: 'password', description: 'is too common' }]);
  });

  it('Authenticate reports email and password together', async () => {
    const throttle = { begin: vi.fn(), succeeded: vi.fn(), abandoned: vi.fn() };
    const tokens = { issue: vi.fn(), verify: vi.fn() } satisfies TokenProvider;
    const authenticate = new Authenticate({ uow: unusedUow, users, hasher, tokens, throttle, clock, audit, sessionPolicy: { idleSeconds: 60, maxSeconds: 120, reuseGraceSeconds: 0 } });
    const error = await invalidArgument(() => authenticate.execute({ email: '  ', password: '', clientAddress: '203.0.113.1' }));
    expect(error.violations.map((v) => v.field)).toEqual(['email', 'password']);
    expect(throttle.begin).not.toHaveBeenCalled();
    expect(hasher.verify).not.toHaveBeenCalled();
  });
});

describe('User.register', () => {
  const now = new Date('2026-03-01T12:34:56.789Z');

  it('creates an active user with a fresh id and both timestamps at now', () => {
    const { user } = User.register(newUser(), now);
    expect(UserId.isValid(user.id.value)).toBe(true);
    expect(user.status).toBe(UserStatus.Active);
    expect(user.isActive).toBe(true);
    expect(user.createdAt).toEqual(now);
    expect(user.updatedAt).toEqual(now);
    expect(user.email.value).toBe('Ann.Lee@example.com');
    expect(user.passwordHash.reveal()).toBe(HASH);
  });

  it('gives each registration its own user id and event id', () => {
    const a = User.register(newUser(), now);
    const b = User.register(newUser(), now);
    expect(a.user.id.equals(b.user.id)).toBe(false);
    expect(a.event.eventId).not.toBe(b.event.eventId);
  });

  it('raises UserRegistered about the same user, with the same ids and values', () => {
    const { user, event } = User.register(newUser(), now);
    expect(event).toEqual({
      type: 'identity.v1.UserRegistered',
      eventId: expect.any(String),
      aggregateId: user.id.value,
      userId: user.id.value,
      email: user.email.value,
      firstName: user.firstName.value,
      lastName: user.lastName.value,
      occurredAt: now,
    });
    expect(UserId.isValid(event.eventId)).toBe(true);
    expect(event.eventId).not.toBe(user.id.value);
  });

  it('puts no secret in the event', () => {
    const { event } = User.register(newUser(), now);
    const serialised = JSON.stringify(event);
    expect(serialised).not.toContain(HASH);
    expect(serialised).not.toContain('$2b$');
    expect(Object.keys(event).filter((key) => /password|hash|secret/i.test(key))).toEqual([]);
  });

  it('withPasswordHash returns a new user and leaves the original unchanged', () => {
    const { user } = User.register(newUser(), now);
    const later = new Date(now.getTime() + 60_000);
    const updated = user.withPasswordHash(PasswordHash.fromTrusted('$2b$12$other'), later);
    expect(updated.passwordHash.reveal()).toBe('$2b$12$other');
    expect(updated.updatedAt).toEqual(later);
    expect(updated.createdAt).toEqual(now);
    expect(updated.id.equals(user.id)).toBe(true);
    expect(user.passwordHash.reveal()).toBe(HASH);
    expect(user.updatedAt).toEqual(now);
  });
});

describe('userMapper', () => {
  const now = new Date('2026-03-01T12:34:56.789Z');

  function expectSameUser(actual: User, expected: User) {
    expect(actual.id.value).toBe(expected.id.value);
    expect(actual.email.value).toBe(expected.email.value);
    expect(actual.email.key).toBe(expected.email.key);
    expect(actual.firstName.value).toBe(expected.firstName.value);
    expect(actual.lastName.value).toBe(expected.lastName.value);
    expect(actual.passwordHash.reveal()).toBe(expected.passwordHash.reveal());
    expect(actual.status).toBe(expected.status);
    expect(actual.createdAt.getTime()).toBe(expected.createdAt.getTime());
    expect(actual.updatedAt.getTime()).toBe(expected.updatedAt.getTime());
  }

  it('writes every column, with the lower-cased email key and the hash itself', () => {
    const { user } = User.register(newUser(), now);
    expect(userMapper.toPersistence(user)).toEqual({
      id: user.id.value,
      email: 'Ann.Lee@example.com',
      email_key: 'ann.lee@example.com',
      password_hash: HASH,
      first_name: 'Ann',
      last_name: 'Lee',
      status: 'active',
      created_at: now,
      updated_at: now,
      tokens_valid_after: null,
      disabled_reason: null,
    });
  });

  it('writes an erased user as its id and status only: no email, names or hash (issue 14)', () => {
    const { user } = User.register(newUser(), now);
    const erased = user.erase(new Date(now.getTime() + 1000)).user;
    expect(userMapper.toPersistence(erased)).toMatchObject({ id: user.id.value, status: 'deleted', email: null, email_key: null, password_hash: null, first_name: null, last_name: null });
  });

  it('round-trips a registered user', () => {
    const { user } = User.register(newUser(), now);
    expectSameUser(userMapper.toDomain(userMapper.toPersistence(user)), user);
  });

  it('round-trips a disabled user with unicode names and different timestamps', () => {
    const user = User.restore({
      id: UserId.generate(),
      email: parsed(Email.parse('Zoë@Bücher.DE')),
      firstName: parsed(PersonName.parse('Zoë')),
      lastName: parsed(PersonName.parse('李😀')),
      passwordHash: PasswordHash.fromTrusted(HASH),
      status: UserStatus.Disabled,
      createdAt: now,
      updatedAt: new Date(now.getTime() + 1),
    });
    const back = userMapper.toDomain(userMapper.toPersistence(user));
    expectSameUser(back, user);
    expect(back.isActive).toBe(false);
  });

  it('reads timestamps that arrive as strings', () => {
    const { user } = User.register(newUser(), now);
    const row = { ...userMapper.toPersistence(user), created_at: now.toISOString(), updated_at: now.toISOString() } as unknown as UserRow;
    const back = userMapper.toDomain(row);
    expect(back.createdAt).toBeInstanceOf(Date);
    expect(back.createdAt.getTime()).toBe(now.getTime());
  });

  it.each(['removed', 'ACTIVE', '', 'Active '])('refuses an unknown status %j', (status) => {
    const { user } = User.register(newUser(), now);
    const row = { ...userMapper.toPersistence(user), status };
    expect(() => userMapper.toDomain(row)).toThrow(/unknown value/);
  });
});
