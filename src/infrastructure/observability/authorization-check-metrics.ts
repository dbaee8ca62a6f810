import type {
  AuthorizationCheckMetrics,
  AuthorizationCheckResult,
  CheckRefusalReason,
} from '../../application/ports/request-authorization.port.js';
import type { Metrics } from './metrics.js';
import { PendingCount } from './pending-count.js';

const CHECK_RESULTS: readonly AuthorizationCheckResult[] = ['allowed', 'denied', 'unavailable'];

/**
 * The ext_authz Check port on ext_authz_checks_total and token_verify_failures_total. Each
 * result's series is resolved once and starts at 0, so a dashboard sees it before the first
 * call. Checks are counted in plain numbers until scraped (see PendingCount).
 */
export function prometheusAuthorizationCheckMetrics(metrics: Pick<Metrics, 'extAuthzChecks' | 'tokenVerifyFailures' | 'onScrape'>): AuthorizationCheckMetrics {
  const results = new Map(
    CHECK_RESULTS.map((result) => {
      const series = metrics.extAuthzChecks.labels({ result });
      series.inc(0);
      return [result, new PendingCount(series)];
    }),
  );
  metrics.onScrape(() => results.forEach((count) => count.flush()));
  const missing = metrics.tokenVerifyFailures.labels({ reason: 'missing' });
  return {
    checked: (result) => results.get(result)?.add(),
    refused: (reason: CheckRefusalReason) => (reason === 'missing' ? missing.inc() : metrics.tokenVerifyFailures.inc({ reason })),
  };
}
