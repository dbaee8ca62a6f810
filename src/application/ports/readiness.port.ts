/**
 * Whether this process should receive traffic, as the transport layer (gRPC health, /readyz)
 * needs to know it. The implementation probes the database and the signing keys; transport
 * only reads the result and listens for changes.
 */

/**
 * What a check found, from a fixed vocabulary: a probe's answer is public (/readyz, health),
 * so it names a state and never carries an error's text.
 */
export type CheckState = 'ok' | 'down' | 'timeout' | 'migrations_pending' | 'missing' | 'behind' | 'draining';

export interface ReadinessReport {
  readonly ready: boolean;
  /** Each check by name, e.g. `{ database: 'ok', signing_key: 'missing' }`. */
  readonly checks: Readonly<Record<string, CheckState>>;
}

export interface ReadinessQuery {
  /** /readyz also fails when the outbox falls behind; gRPC health does not. */
  readonly includeOutboxLag?: boolean;
}

/** Ends a subscription; calling it twice is harmless. */
export type Unsubscribe = () => void;

export interface ReadinessPort {
  readonly isDraining: boolean;
  /** The latest probe's report: however often it is asked, the dependencies are probed at most once a second. */
  check(query?: ReadinessQuery): Promise<ReadinessReport>;
  /**
   * Calls `listener` with every change of readiness (draining included). Subscriptions are
   * capped, since each one holds a stream open: past the cap this returns undefined.
   */
  subscribe(listener: (ready: boolean) => void): Unsubscribe | undefined;
  /** True while the cap on subscriptions is reached: a new one would be refused. */
  readonly subscriptionsFull: boolean;
}
