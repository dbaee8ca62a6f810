import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyDecryptionError, KeyEncryption } from '../../src/infrastructure/tokens/key-encryption.js';

describe('KeyEncryption (AES-256-GCM, private keys at rest)', () => {
  const kek = randomBytes(32);
  const plaintext = Buffer.from(JSON.stringify({ kty: 'EC', crv: 'P-256', d: 'private-scalar-d-value', x: 'xx', y: 'yy' }));

  it('round-trips', () => {
    const encryption = new KeyEncryption(kek);
    const sealed = encryption.encrypt('kid-1', plaintext);
    expect(encryption.decrypt('kid-1', sealed)).toEqual(plaintext);
  });

  it('decrypts with another instance built from the same key (a restart, another replica)', () => {
    const sealed = new KeyEncryption(kek).encrypt('kid-1', plaintext);
    expect(new KeyEncryption(Buffer.from(kek)).decrypt('kid-1', sealed)).toEqual(plaintext);
  });

  it('the ciphertext does not contain the plaintext, nor any part of the private member', () => {
    const sealed = new KeyEncryption(kek).encrypt('kid-1', plaintext);
    expect(sealed.includes(plaintext)).toBe(false);
    expect(sealed.includes(Buffer.from('private-scalar-d-value'))).toBe(false);
    expect(sealed.toString('latin1')).not.toContain('"d"');
    expect(sealed.length).toBeGreaterThan(plaintext.length);
  });

  it('encrypting twice gives different bytes (a fresh nonce each time)', () => {
    const encryption = new KeyEncryption(kek);
    expect(encryption.encrypt('kid-1', plaintext).equals(encryption.encrypt('kid-1', plaintext))).toBe(false);
  });

  it('a wrong key encryption key fails with KeyDecryptionError naming the kid', () => {
    const sealed = new KeyEncryption(kek).encrypt('kid-1', plaintext);
    const wrong = new KeyEncryption(randomBytes(32));
    expect(() => wrong.decrypt('kid-1', sealed)).toThrow(KeyDecryptionError);
    expect(() => wrong.decrypt('kid-1', sealed)).toThrow(/kid-1/);
  });

  it('a ciphertext moved to another kid fails with KeyDecryptionError', () => {
    const encryption = new KeyEncryption(kek);
    const sealed = encryption.encrypt('kid-1', plaintext);
    expect(() => encryption.decrypt('kid-2', sealed)).toThrow(KeyDecryptionError);
  });

  it.each([
    ['a flipped ciphertext byte', (b: Buffer) => flip(b, b.length - 1)],
    ['a flipped tag byte', (b: Buffer) => flip(b, 1 + 12)],
    ['a flipped nonce byte', (b: Buffer) => flip(b, 1)],
    ['an unknown format version', (b: Buffer) => flip(b, 0)],
    ['truncation', (b: Buffer) => b.subarray(0, 20)],
    ['nothing at all', () => Buffer.alloc(0)],
  ])('%s fails with KeyDecryptionError', (_label, alter) => {
    const encryption = new KeyEncryption(kek);
    const sealed = encryption.encrypt('kid-1', plaintext);
    expect(() => encryption.decrypt('kid-1', alter(Buffer.from(sealed)))).toThrow(KeyDecryptionError);
  });

  it.each([0, 16, 31, 33, 64])('refuses a key encryption key of %i bytes', (length) => {
    expect(() => new KeyEncryption(randomBytes(length))).toThrow(/32 bytes/);
  });
});

function flip(buffer: Buffer, index: number): Buffer {
  buffer[index] = buffer[index]! ^ 0xff;
  return buffer;
}
