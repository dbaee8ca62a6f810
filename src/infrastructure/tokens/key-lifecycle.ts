import type { SigningKeyState } from '../../application/ports/signing-key-operations.port.js';

/**
 * A signing key's state follows from its times alone, so every replica that reads the same
 * rows agrees on it without anyone writing state transitions:
 * pending (published, not signing) -> active (signing) -> retired (published until the last
 * token it signed has expired) -> removed.
 */
export type KeyState = SigningKeyState;

export interface KeyTimes {
  readonly activatesAt: Date;
  readonly retiresAt: Date | null;
  readonly removesAt: Date | null;
}

export function keyState(key: KeyTimes, now: Date): KeyState {
  const t = now.getTime();
  if (t < key.activatesAt.getTime()) return 'pending';
  if (key.retiresAt === null || t < key.retiresAt.getTime()) return 'active';
  if (key.removesAt === null || t < key.removesAt.getTime()) return 'retired';
  return 'removed';
}

/** Published keys are in the JWKS and accepted by VerifyToken. */
export const isPublished = (key: KeyTimes, now: Date): boolean => keyState(key, now) !== 'removed';

/**
 * The key that signs at `now`: the newest active one (the first of equals). One pass, no array:
 * every ext_authz Check asks whether there is one (KeyRing.ready).
 */
export function signingKeyAt<K extends KeyTimes>(keys: Iterable<K>, now: Date): K | undefined {
  let newest: K | undefined;
  for (const key of keys) {
    if (keyState(key, now) === 'active' && (newest === undefined || key.activatesAt.getTime() > newest.activatesAt.getTime())) newest = key;
  }
  return newest;
}

export interface RotationPlan {
  readonly activatesAt: Date;
  /** The current key stops signing when the new one starts... */
  readonly retiresAt: Date;
  /** ...and leaves the JWKS once the last token it signed has expired. */
  readonly removesAt: Date;
}

export function planRotation(now: Date, leadSeconds: number, tokenTtlSeconds: number, skewSeconds: number): RotationPlan {
  const activatesAt = new Date(now.getTime() + leadSeconds * 1000);
  return {
    activatesAt,
    retiresAt: activatesAt,
    removesAt: new Date(activatesAt.getTime() + (tokenTtlSeconds + skewSeconds) * 1000),
  };
}
