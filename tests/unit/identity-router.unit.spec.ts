import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OverloadedError, ServiceUnavailableError } from '../../src/application/application.errors.js';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from '../../src/gen/google/rpc/error_details_pb.js';
import { UserStatus } from '../../src/gen/identity/v1/identity_pb.js';
import { inMemoryApi } from '../helpers/router-transport.js';

const registration = { email: 'Ann.Lee@Example.COM', password: 'correct horse battery', firstName: 'Ann', lastName: 'Lee' };
const login = { email: 'ann.lee@example.com', password: registration.password };

/** The error a client sees, or a failure when the call succeeded. */
async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(() => expect.unreachable('the call succeeded'), (e: unknown) => e);
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

/** A comparison that ends only when its call is stopped, as a bcrypt job outlived by its caller. */
const untilAborted = (_password: unknown, _hash: unknown, signal?: AbortSignal) =>
  new Promise<boolean>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));

const reasonOf = (error: ConnectError) => error.findDetails(ErrorInfoSchema).map((info) => ({ reason: info.reason, domain: info.domain }));

describe('IdentityService through the in-memory router', () => {
  let api: ReturnType<typeof inMemoryApi>;
  beforeEach(() => {
    api = inMemoryApi();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  describe('RegisterUser', () => {
    it('answers with the stored user: normalised email, ACTIVE, timestamps, and no hash', async () => {
      const { user } = await api.identity.registerUser(registration);
      expect(user).toMatchObject({ email: 'Ann.Lee@example.com', firstName: 'Ann', lastName: 'Lee', status: UserStatus.ACTIVE });
      expect(user?.id).toBe(api.users.all[0]?.id.value);
      expect(user?.createdAt && timestampDate(user.createdAt)).toEqual(api.clock.now());
      expect(JSON.stringify(user, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).not.toMatch(/fake\$|password|hash/i);
    });

    it('bad fields: INVALID_ARGUMENT, one message naming them, and a BadRequest violation for each', async () => {
      const error = await rpcError(api.identity.registerUser({ ...registration, email: 'ann', lastName: '' }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe('email: must contain exactly one @; last_name: is required');
      const [badRequest] = error.findDetails(BadRequestSchema);
      expect(badRequest?.fieldViolations.map(({ field, description }) => ({ field, description }))).toEqual([
        { field: 'email', description: 'must contain exactly one @' },
        { field: 'last_name', description: 'is required' },
      ]);
      expect(reasonOf(error)).toEqual([{ reason: 'IDENTITY.INVALID_ARGUMENT', domain: 'identity.v1' }]);
    });

    it('an email taken in another case: ALREADY_EXISTS', async () => {
      await api.identity.registerUser(registration);
      const error = await rpcError(api.identity.registerUser({ ...registration, email: 'ANN.LEE@example.com' }));
      expect(error.code).toBe(Code.AlreadyExists);
      expect(reasonOf(error)).toEqual([{ reason: 'IDENTITY.EMAIL_TAKEN', domain: 'identity.v1' }]);
    });

    it('the database down: UNAVAILABLE, never INTERNAL, and nothing written', async () => {
      vi.spyOn(api.uow, 'run').mockRejectedValueOnce(new ServiceUnavailableError('the database'));
      const error = await rpcError(api.identity.registerUser(registration));
      expect(error.code).toBe(Code.Unavailable);
      expect(api.users.all).toEqual([]);
      // The metrics count the code the caller received, not what the handler threw.
      expect(api.rpcMetrics.handled.at(-1)).toEqual({ method: 'identity.v1.IdentityService/RegisterUser', code: 'Unavailable' });
    });
  });

  describe('Authenticate and VerifyToken', () => {
    beforeEach(async () => {
      await api.identity.registerUser(registration);
    });

    it('a right password gets a Bearer token that VerifyToken accepts for the same user', async () => {
      const res = await api.identity.authenticate(login);
      expect(res.tokenType).toBe('Bearer');
      expect(res.user?.email).toBe('Ann.Lee@example.com');
      const verified = await api.identity.verifyToken({ token: res.accessToken });
      expect(verified.userId).toBe(res.user?.id);
      expect(verified.expiresAt).toEqual(res.expiresAt);
      expect(verified.tokenId).not.toBe('');
    });

    it('wrong password and unknown email: UNAUTHENTICATED, identical message and details', async () => {
      const wrong = await rpcError(api.identity.authenticate({ ...login, password: 'wrong password' }));
      const unknown = await rpcError(api.identity.authenticate({ ...login, email: 'nobody@example.com' }));
      expect(wrong.code).toBe(Code.Unauthenticated);
      expect({ code: unknown.code, message: unknown.rawMessage, details: reasonOf(unknown) }).toEqual({
        code: wrong.code,
        message: wrong.rawMessage,
        details: reasonOf(wrong),
      });
      expect(unknown.details).toHaveLength(wrong.details.length);
    });

    it('too many failures: RESOURCE_EXHAUSTED with the delay in RetryInfo', async () => {
      for (let i = 0; i < 5; i++) await rpcError(api.identity.authenticate({ ...login, password: 'wrong password' }));
      const error = await rpcError(api.identity.authenticate(login));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.findDetails(RetryInfoSchema).map((info) => info.retryDelay?.seconds)).toEqual([1n]);
      expect(reasonOf(error)).toEqual([{ reason: 'IDENTITY.TOO_MANY_ATTEMPTS', domain: 'identity.v1' }]);
      expect(error.rawMessage).toMatch(/retry in 1 s/);
    });

    it('a full hashing queue: RESOURCE_EXHAUSTED without RetryInfo, told apart by its reason', async () => {
      api.hasher.queueFull = true;
      const error = await rpcError(api.identity.authenticate(login));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.findDetails(RetryInfoSchema)).toEqual([]);
      expect(reasonOf(error)).toEqual([{ reason: 'IDENTITY.OVERLOADED', domain: 'identity.v1' }]);
    });

    it('a bug: INTERNAL with a generic message; its own text stays in the server', async () => {
      vi.spyOn(api.tokens, 'issue').mockRejectedValueOnce(new TypeError('secret detail of a bug'));
      const error = await rpcError(api.identity.authenticate(login));
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe('internal error');
      expect(error.details).toEqual([]);
      expect(api.rpcMetrics.handled.at(-1)).toEqual({ method: 'identity.v1.IdentityService/Authenticate', code: 'Internal' });
    });

    it('a bad token: UNAUTHENTICATED, and why is not told', async () => {
      const { accessToken } = await api.identity.authenticate(login);
      api.clock.advance(3_600_000);
      const expired = await rpcError(api.identity.verifyToken({ token: accessToken }));
      const forged = await rpcError(api.identity.verifyToken({ token: 'fake.forged' }));
      for (const error of [expired, forged]) {
        expect(error.code).toBe(Code.Unauthenticated);
        expect(error.rawMessage).toBe('invalid token');
        expect(reasonOf(error)).toEqual([{ reason: 'IDENTITY.INVALID_TOKEN', domain: 'identity.v1' }]);
      }
    });
  });

  it('a call past its deadline: DEADLINE_EXCEEDED, and no token issued', async () => {
    await api.identity.registerUser(registration);
    vi.spyOn(api.hasher, 'verify').mockImplementation(untilAborted);
    const issue = vi.spyOn(api.tokens, 'issue');
    const error = await rpcError(api.identity.authenticate(login, { timeoutMs: 50 }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(issue).not.toHaveBeenCalled();
  });

  it('the server’s own request timeout: DEADLINE_EXCEEDED too', async () => {
    const slow = inMemoryApi({ requestTimeoutMs: 50 });
    await slow.identity.registerUser(registration);
    vi.spyOn(slow.hasher, 'verify').mockImplementation(untilAborted);
    const error = await rpcError(slow.identity.authenticate(login));
    expect(error.code).toBe(Code.DeadlineExceeded);
  });

  it('a full hashing queue at registration: RESOURCE_EXHAUSTED, and nothing written', async () => {
    vi.spyOn(api.hasher, 'hash').mockRejectedValueOnce(new OverloadedError());
    const error = await rpcError(api.identity.registerUser(registration));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(api.users.all).toEqual([]);
  });
});
