/** How a RefreshToken call ended, as a metric label. */
export type RefreshOutcome = 'rotated' | 'grace' | 'reused' | 'expired' | 'revoked' | 'unknown' | 'user_inactive';

/** Counts what the session use cases decide, for the operators' dashboards. */
export interface SessionTelemetry {
  refreshed(outcome: RefreshOutcome): void;
}
