import type { PasswordHasher } from '../../src/application/ports/password-hasher.port.js';

/**
 * Counts the calls that reach the real hasher, for ServiceOverrides.wrapHasher: tests assert
 * on the calls (one comparison, no hashing), never on the clock.
 */
export function countingHasher() {
  const calls = { hash: 0, verify: 0 };
  const wrap = (inner: PasswordHasher): PasswordHasher => ({
    hash: (password, signal) => {
      calls.hash++;
      return inner.hash(password, signal);
    },
    verify: (password, hash, signal) => {
      calls.verify++;
      return inner.verify(password, hash, signal);
    },
    needsRehash: (hash) => inner.needsRehash(hash),
  });
  return { calls, wrap };
}
