import type {
  AuthorizationCheckMetrics,
  AuthorizationCheckResult,
  CheckRefusalReason,
} from '../../application/ports/request-authorization.port.js';
import type { Metrics } from './metrics.js';

const CHECK_RESULTS: readonly AuthorizationCheckResult[] = ['allowed', 'denied', 'unavailable'];

/**
 * The ext_authz Check port on ext_authz_checks_total and token_verify_failures_total. Each
 * result's series is resolved once (prom-client hashes the labels on every inc() otherwise)
 * and starts at 0, so a dashboard sees it before the first call.
 */
export function prometheusAuthorizationCheckMetrics(metrics: Pick<Metrics, 'extAuthzChecks' | 'tokenVerifyFailures'>): AuthorizationCheckMetrics {
  const results = new Map(CHECK_RESULTS.map((result) => [result, metrics.extAuthzChecks.labels({ result })]));
  for (const series of results.values()) series.inc(0);
  const missing = metrics.tokenVerifyFailures.labels({ reason: 'missing' });
  return {
    checked: (result) => results.get(result)?.inc(),
    refused: (reason: CheckRefusalReason) => (reason === 'missing' ? missing.inc() : metrics.tokenVerifyFailures.inc({ reason })),
  };
}
