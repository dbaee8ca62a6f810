import type { Logger } from 'pino';
import type { AuditEntry, AuditLog } from '../../application/ports/audit-log.port.js';
import { maskEmail } from './logger.js';

/** Audit entries as log lines tagged `audit: true`, with the email masked. */
export class PinoAuditLog implements AuditLog {
  constructor(private readonly logger: Logger) {}

  record({ email, ...entry }: AuditEntry): void {
    this.logger.info({ audit: true, ...entry, ...(email !== undefined && { email: maskEmail(email) }) }, `audit ${entry.action} ${entry.outcome}`);
  }
}
