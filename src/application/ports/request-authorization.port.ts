import type { TokenFailureReason } from '../../domain/identity/identity.errors.js';

/**
 * What an Envoy ext_authz Check answered: the request goes on (`allowed`), is refused with
 * 401 (`denied`), or is refused with 503 because this replica cannot verify anything now
 * (`unavailable`).
 */
export type AuthorizationCheckResult = 'allowed' | 'denied' | 'unavailable';

/**
 * Why a Check refused a request before VerifyToken could count it itself: no Bearer token at
 * all (`missing`), or one VerifyToken refused as malformed input (not UTF-8).
 */
export type CheckRefusalReason = TokenFailureReason | 'missing';

/** The counters of the Check endpoint (ext_authz_checks_total, token_verify_failures_total). */
export interface AuthorizationCheckMetrics {
  checked(result: AuthorizationCheckResult): void;
  refused(reason: CheckRefusalReason): void;
}

/** Whether this replica has a signing key loaded now; without one it can verify nothing. */
export interface SigningKeyStatus {
  readonly ready: boolean;
}
