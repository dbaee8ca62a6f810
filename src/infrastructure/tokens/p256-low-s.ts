/**
 * ECDSA signatures are malleable: if (r, s) verifies, so does (r, n − s). ES256 tokens must have
 * one spelling (a cache entry or a deny-list keyed on the token string is otherwise bypassed),
 * so we sign and accept only the "low-S" half, s ≤ n/2, as Bitcoin (BIP 62/146) and most JWT
 * libraries that care do. Signatures here are JWS's IEEE P1363 form: r ‖ s, 32 bytes each.
 */

/** n, the order of P-256's base point. */
const ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
/** floor(n / 2), big-endian: s above it is high. */
const HALF_ORDER = Buffer.from('7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8', 'hex');
const SCALAR_BYTES = 32;

/** On the verification hot path: one 32-byte comparison, no allocation. */
export const hasHighS = (signature: Uint8Array): boolean =>
  Buffer.compare(signature.subarray(SCALAR_BYTES, 2 * SCALAR_BYTES), HALF_ORDER) > 0;

/** The same signature with s replaced by n − s when s is high; as valid, and the only one we accept. */
export function withLowS(signature: Uint8Array): Uint8Array {
  if (signature.length !== 2 * SCALAR_BYTES || !hasHighS(signature)) return signature;
  const s = BigInt(`0x${Buffer.from(signature.subarray(SCALAR_BYTES)).toString('hex')}`);
  const low = Buffer.from((ORDER - s).toString(16).padStart(2 * SCALAR_BYTES, '0'), 'hex');
  return Buffer.concat([signature.subarray(0, SCALAR_BYTES), low]);
}
