import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ServiceUnavailableError } from '../../src/application/application.errors.js';
import { InvalidArgumentError, UserAlreadyExistsError } from '../../src/domain/identity/identity.errors.js';
import { PlainPassword } from '../../src/domain/identity/value-objects/plain-password.value-object.js';
import { FakeOutbox } from '../fakes/outbox.fake.js';
import { aUser } from '../fakes/user.builder.js';
import { wireFakes, type Fakes } from '../fakes/wiring.js';

const CLIENT = '203.0.113.7';
const request = { email: '  Ann.Lee@Example.COM ', password: 'correct horse battery', firstName: ' Ann ', lastName: 'Lee', clientAddress: CLIENT };

function plain(text: string): PlainPassword {
  const parsed = PlainPassword.parse(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe('RegisterUser', () => {
  let fakes: Fakes;
  beforeEach(() => {
    fakes = wireFakes();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('stores a normalised, active user with a hash of the password, and answers with it', async () => {
    const user = await fakes.useCases.registerUser.execute(request);
    expect(user.email.value).toBe('Ann.Lee@example.com');
    expect(user.firstName.value).toBe('Ann');
    expect(user.isActive).toBe(true);
    expect(user.createdAt).toEqual(fakes.clock.now());
    expect(fakes.users.all.map((u) => u.id.value)).toEqual([user.id.value]);
    const stored = await fakes.users.findByEmail('ann.lee@example.com');
    expect(stored?.id.value).toBe(user.id.value);
    expect(await fakes.hasher.verify(plain(request.password), stored?.passwordHash)).toBe(true);
    expect(fakes.hasher.calls.hash).toBe(1);
  });

  it('writes one UserRegistered event about that user in the same commit', async () => {
    const user = await fakes.useCases.registerUser.execute(request);
    expect(fakes.uow.commits).toBe(1);
    expect(fakes.outbox.events).toEqual([expect.objectContaining({ type: 'identity.v1.UserRegistered', userId: user.id.value, email: 'Ann.Lee@example.com' })]);
  });

  it('audits the registration with the new user id and the client address', async () => {
    const user = await fakes.useCases.registerUser.execute(request);
    expect(fakes.audit.entries).toEqual([
      { action: 'register', outcome: 'success', clientAddress: CLIENT, email: 'Ann.Lee@example.com', userId: user.id.value },
    ]);
  });

  it('refuses an email already registered in another case, before spending a hash', async () => {
    await fakes.users.save(aUser({ email: 'ann.lee@EXAMPLE.com' }));
    await expect(fakes.useCases.registerUser.execute(request)).rejects.toBeInstanceOf(UserAlreadyExistsError);
    expect(fakes.hasher.calls.hash).toBe(0);
    expect(fakes.users.all).toHaveLength(1);
    expect(fakes.outbox.events).toEqual([]);
    expect(fakes.audit.entries).toEqual([{ action: 'register', outcome: 'rejected', clientAddress: CLIENT, email: 'Ann.Lee@example.com' }]);
  });

  it('lets exactly one of two racing registrations win; the loser writes nothing', async () => {
    const results = await Promise.allSettled([
      fakes.useCases.registerUser.execute(request),
      fakes.useCases.registerUser.execute({ ...request, email: 'ANN.LEE@example.com' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const loser = results.find((r) => r.status === 'rejected');
    expect(loser?.reason).toBeInstanceOf(UserAlreadyExistsError);
    expect(fakes.users.all).toHaveLength(1);
    expect(fakes.outbox.events).toHaveLength(1);
    expect(fakes.audit.entries.map((e) => e.outcome).sort()).toEqual(['rejected', 'success']);
  });

  it('names every bad field at once and touches nothing', async () => {
    const error = await fakes.useCases.registerUser
      .execute({ ...request, email: 'ann', password: 'ann@x.io', firstName: '', lastName: 'L\u0007' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).violations.map((v) => v.field)).toEqual(['email', 'first_name', 'last_name']);
    expect(fakes.hasher.calls.hash).toBe(0);
    expect(fakes.audit.entries).toEqual([]);
  });

  it('refuses a password equal to the email, compared without case', async () => {
    const error = await fakes.useCases.registerUser.execute({ ...request, password: 'ANN.LEE@EXAMPLE.COM' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).violations).toEqual([{ field: 'password', description: 'must not equal the email' }]);
  });

  it('commits nothing when the deadline passes inside the transaction', async () => {
    const deadline = new AbortController();
    const reason = new Error('deadline exceeded');
    // The clock is read inside the transaction (User.register): the deadline passes right there.
    vi.spyOn(fakes.clock, 'now').mockImplementationOnce(() => {
      deadline.abort(reason);
      return new Date('2026-01-01T00:00:00Z');
    });
    await expect(fakes.useCases.registerUser.execute({ ...request, signal: deadline.signal })).rejects.toBe(reason);
    expect(fakes.uow.rollbacks).toBe(1);
    expect(fakes.users.all).toEqual([]);
    expect(fakes.outbox.events).toEqual([]);
    expect(fakes.audit.entries).toEqual([]);
  });

  it('stops before the transaction when the deadline passes while hashing', async () => {
    const deadline = new AbortController();
    const hash = fakes.hasher.hash.bind(fakes.hasher);
    vi.spyOn(fakes.hasher, 'hash').mockImplementationOnce((password, signal) => {
      deadline.abort(new Error('deadline exceeded'));
      return hash(password, signal); // the hasher stops waiting only if it was given the signal
    });
    await expect(fakes.useCases.registerUser.execute({ ...request, signal: deadline.signal })).rejects.toThrow('deadline exceeded');
    expect(fakes.uow.commits + fakes.uow.rollbacks).toBe(0);
    expect(fakes.users.all).toEqual([]);
  });

  it('leaves no user behind when the event cannot be written', async () => {
    vi.spyOn(FakeOutbox.prototype, 'add').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
    await expect(fakes.useCases.registerUser.execute(request)).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(fakes.users.all).toEqual([]);
    expect(fakes.outbox.events).toEqual([]);
    expect(fakes.audit.entries).toEqual([]);
  });
});
