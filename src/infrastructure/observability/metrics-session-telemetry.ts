import type { RefreshOutcome, SessionTelemetry } from '../../application/ports/session-telemetry.port.js';
import type { Metrics } from './metrics.js';

/** The session use cases' outcomes as Prometheus series. */
export class MetricsSessionTelemetry implements SessionTelemetry {
  constructor(private readonly metrics: Pick<Metrics, 'refreshTokens' | 'refreshTokenReuseDetected'>) {}

  refreshed(outcome: RefreshOutcome): void {
    this.metrics.refreshTokens.inc({ outcome });
    if (outcome === 'reused') this.metrics.refreshTokenReuseDetected.inc();
  }
}
