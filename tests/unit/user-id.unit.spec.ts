import { describe, expect, it } from 'vitest';
import { UserId } from '../../src/domain/identity/value-objects/user-id.value-object.js';

describe('UserId', () => {
  it('prints as its UUID, so a log line shows the id itself', () => {
    const id = UserId.fromTrusted('0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d');
    expect(String(id)).toBe('0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d');
    expect(String(UserId.generate())).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('is equal by value, not by instance', () => {
    const value = UserId.generate().value;
    expect(UserId.fromTrusted(value).equals(UserId.fromTrusted(value))).toBe(true);
    expect(UserId.fromTrusted(value).equals(UserId.generate())).toBe(false);
  });

  it.each(['', 'not-a-uuid', '0B5E1A2C-3D4F-4A6B-8C9D-0E1F2A3B4C5D', ' 0b5e1a2c-3d4f-4a6b-8c9d-0e1f2a3b4c5d'])('does not take %j as an id', (value) => {
    expect(UserId.isValid(value)).toBe(false);
  });
});
