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

/** The key that signs at `now`: the newest active one. */
export function signingKeyAt<K extends KeyTimes>(keys: readonly K[], now: Date): K | undefined {
  return keys
    .filter((key) => keyState(key, now) === 'active')
    .reduce<K | undefined>((newest, key) => (newest && newest.activatesAt >= key.activatesAt ? newest : key), undefined);
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
