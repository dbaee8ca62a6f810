import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import { missingMigrations } from '../db/migrator.js';

export interface ReadinessDeps {
  readonly knex: Knex;
  /** True once a signing key is loaded. */
  readonly keysReady: () => boolean;
  readonly outboxLag?: () => Promise<number>;
  readonly maxOutboxLagSeconds?: number;
  readonly probeTimeoutMs?: number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** Each check by name: "ok" or why it failed. */
  readonly checks: Readonly<Record<string, string>>;
}

const CACHE_MS = 1_000;

/**
 * Whether this process should receive traffic: the database answers, its migrations are
 * current and a signing key is loaded; not while draining. NATS is not part of it, since
 * events wait in the outbox. Probes are cached for a second and shared by concurrent callers.
 */
export class Readiness extends EventEmitter<{ change: [ready: boolean] }> {
  private draining = false;
  private last: { at: number; report: Promise<ReadinessReport> } | undefined;
  private lastReady: boolean | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ReadinessDeps) {
    super();
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on the process reports not ready, and watchers hear it at once. */
  startDraining(): void {
    this.draining = true;
    this.publish(false);
  }

  check(options: { includeOutboxLag?: boolean } = {}): Promise<ReadinessReport> {
    if (options.includeOutboxLag === true) return this.probe(true);
    const now = Date.now();
    if (this.last === undefined || now - this.last.at > CACHE_MS) this.last = { at: now, report: this.probe(false) };
    return this.last.report;
  }

  /** Probes every `intervalMs` so that watchers learn of a change without asking. */
  monitor(intervalMs: number): void {
    this.timer ??= setInterval(() => void this.check().then((report) => this.publish(report.ready)), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private publish(ready: boolean): void {
    const effective = ready && !this.draining;
    if (effective === this.lastReady) return;
    this.lastReady = effective;
    this.emit('change', effective);
  }

  private async probe(includeOutboxLag: boolean): Promise<ReadinessReport> {
    const checks: Record<string, string> = {};
    checks['database'] = await this.guard(async () => {
      await this.deps.knex.raw('select 1');
      const missing = await missingMigrations(this.deps.knex);
      return missing.length === 0 ? 'ok' : `migrations not current (missing ${missing.join(', ')})`;
    });
    checks['signing_key'] = this.deps.keysReady() ? 'ok' : 'no signing key loaded';
    const { outboxLag, maxOutboxLagSeconds } = this.deps;
    if (includeOutboxLag && outboxLag !== undefined && maxOutboxLagSeconds !== undefined) {
      checks['outbox_lag'] = await this.guard(async () => {
        const lag = await outboxLag();
        return lag <= maxOutboxLagSeconds ? 'ok' : `oldest pending event is ${Math.round(lag)} s old`;
      });
    }
    if (this.draining) checks['draining'] = 'shutting down';
    const ready = Object.values(checks).every((value) => value === 'ok');
    // The outbox lag is /readyz's own addition: gRPC health watchers must not hear of it.
    if (!includeOutboxLag) this.publish(ready);
    return { ready, checks };
  }

  private async guard(check: () => Promise<string>): Promise<string> {
    const timeoutMs = this.deps.probeTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
    });
    try {
      return await Promise.race([check(), timeout]);
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      clearTimeout(timer);
    }
  }
}
