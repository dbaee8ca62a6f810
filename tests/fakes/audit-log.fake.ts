import type { AuditEntry, AuditLog } from '../../src/application/ports/audit-log.port.js';

/** Keeps every audit entry, in order, for the test to read back. */
export class FakeAuditLog implements AuditLog {
  readonly entries: AuditEntry[] = [];

  record(entry: AuditEntry): void {
    this.entries.push(entry);
  }
}
