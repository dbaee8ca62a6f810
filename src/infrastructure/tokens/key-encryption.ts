import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CodedError } from '../../domain/shared/coded-error.js';

const VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** The key encryption key is wrong or the stored private key was altered. */
export class KeyDecryptionError extends CodedError {
  readonly code = 'KEYS.DECRYPTION_FAILED';

  constructor(kid: string, options?: ErrorOptions) {
    super(`cannot decrypt the private key of signing key ${kid}: KEY_ENCRYPTION_KEY does not match the one it was stored with`, options);
  }
}

/**
 * AES-256-GCM for private keys at rest. The kid is authenticated data, so a ciphertext
 * copied onto another key's row does not decrypt.
 * Layout: version (1 byte) | nonce (12) | tag (16) | ciphertext.
 */
export class KeyEncryption {
  constructor(private readonly kek: Buffer) {
    if (kek.length !== 32) throw new Error('the key encryption key must be 32 bytes');
  }

  encrypt(kid: string, plaintext: Buffer): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.kek, nonce);
    cipher.setAAD(aad(kid));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), ciphertext]);
  }

  decrypt(kid: string, sealed: Buffer): Buffer {
    try {
      if (sealed[0] !== VERSION) throw new Error(`unknown format version ${sealed[0]}`);
      const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
      const tag = sealed.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', this.kek, nonce);
      decipher.setAAD(aad(kid));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES + TAG_BYTES)), decipher.final()]);
    } catch (error) {
      throw new KeyDecryptionError(kid, { cause: error });
    }
  }
}

const aad = (kid: string) => Buffer.from(`signing_keys:${kid}`);
