export type AuditAction = 'register' | 'login' | 'change_password' | 'refresh' | 'logout';
type AuditOutcome = 'success' | 'failure' | 'throttled' | 'rejected' | 'reuse_detected';

export interface AuditEntry {
  readonly action: AuditAction;
  readonly outcome: AuditOutcome;
  readonly clientAddress: string;
  readonly userId?: string;
  /** The address as presented; the log masks it. */
  readonly email?: string;
}

/** One line per security-relevant event, for whoever reviews access. */
export interface AuditLog {
  record(entry: AuditEntry): void;
}
