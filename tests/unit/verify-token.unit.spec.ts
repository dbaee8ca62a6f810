import { describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError, InvalidTokenError } from '../../src/domain/identity/identity.errors.js';
import { aUser } from '../fakes/user.builder.js';
import { wireFakes } from '../fakes/wiring.js';

describe('VerifyToken', () => {
  it('answers who a token was issued to, with its id and times', async () => {
    const { tokens, clock, useCases } = wireFakes();
    const user = aUser();
    const issued = await tokens.issue(user.id);
    clock.advance(10_000);
    await expect(useCases.verifyToken.execute(issued.token)).resolves.toEqual({
      userId: user.id.value,
      tokenId: issued.tokenId,
      issuedAt: issued.issuedAt,
      expiresAt: issued.expiresAt,
    });
  });

  it('passes on the provider’s refusal, reason and all', async () => {
    const { tokens, clock, useCases } = wireFakes();
    const issued = await tokens.issue(aUser().id);
    clock.advance(3_600_000);
    const expired = await useCases.verifyToken.execute(issued.token).catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(InvalidTokenError);
    expect((expired as InvalidTokenError).reason).toBe('expired');
    await expect(useCases.verifyToken.execute('fake.never-issued')).rejects.toMatchObject({ reason: 'signature' });
  });

  it('refuses a token that was not UTF-8 as INVALID_ARGUMENT naming the field, without asking the provider', async () => {
    const { tokens, useCases } = wireFakes();
    const verify = vi.spyOn(tokens, 'verify');
    const error = await useCases.verifyToken.execute('eyJ\uDC00.x.y').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).violations).toEqual([{ field: 'token', description: 'must be valid UTF-8' }]);
    expect(verify).not.toHaveBeenCalled();
  });
});
