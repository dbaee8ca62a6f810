export type SigningKeyState = 'pending' | 'active' | 'retired' | 'removed';

export interface SigningKeySummary {
  readonly kid: string;
  readonly alg: string;
  readonly state: SigningKeyState;
  readonly createdAt: Date;
  readonly activatesAt: Date;
  readonly retiresAt: Date | null;
  readonly removesAt: Date | null;
}

/** A rotation either published a new key, or was refused with the reason (one is already pending). */
export type RotationOutcome = { readonly rotated: SigningKeySummary } | { readonly refused: string };

/** The token signing keys, as `identity keys …` manages them. */
export interface SigningKeyOperations {
  list(now: Date): Promise<readonly SigningKeySummary[]>;
  rotate(now: Date): Promise<RotationOutcome>;
}
