import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { CheckState, ReadinessPort, ReadinessQuery, ReadinessReport, Unsubscribe } from '../../application/ports/readiness.port.js';
import { missingMigrations } from '../db/migrator.js';

export interface ReadinessDeps {
  readonly knex: Knex;
  /** True once a signing key is loaded. */
  readonly keysReady: () => boolean;
  readonly outboxLag?: () => Promise<number>;
  readonly maxOutboxLagSeconds?: number;
  readonly probeTimeoutMs?: number;
  /** Subscriptions (gRPC health Watch streams) allowed at once. */
  readonly maxSubscribers?: number;
  /** Where a failing check's cause goes: the report itself names only the state. */
  readonly logger?: Pick<Logger, 'warn'>;
  /** Gets `readiness_probes_total`, so that the once-a-second bound can be seen from outside. */
  readonly registry?: Registry;
}

/** A probe's result is reused for this long, however many callers ask (/readyz, health, the monitor). */
const CACHE_MS = 1_000;
const OUTBOX_LAG = 'outbox_lag';

interface Probe {
  readonly at: number;
  readonly checks: Promise<Record<string, CheckState>>;
}

class ProbeTimeout extends Error {}

/**
 * Whether this process should receive traffic: the database answers, its migrations are
 * current and a signing key is loaded; not while draining. NATS is not part of it, since
 * events wait in the outbox. One probe serves every caller for a second, so a flood of /readyz
 * costs the database at most one probe a second (it filled the pool when each call probed).
 */
export class Readiness implements ReadinessPort {
  private draining = false;
  private last: Probe | undefined;
  private lastReady: boolean | undefined;
  private readonly lastStates = new Map<string, CheckState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly subscribers = new Set<(ready: boolean) => void>();
  private readonly probes: Counter | undefined;

  constructor(private readonly deps: ReadinessDeps) {
    this.probes =
      deps.registry &&
      new Counter({ name: 'readiness_probes_total', help: 'Readiness probes of the database (at most one a second)', registers: [deps.registry] });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on the process reports not ready, and subscribers hear it at once. */
  startDraining(): void {
    this.draining = true;
    this.publish(false);
  }

  async check(query: ReadinessQuery = {}): Promise<ReadinessReport> {
    const now = Date.now();
    if (this.last === undefined || now - this.last.at >= CACHE_MS) this.last = { at: now, checks: this.probe() };
    const probed = await this.last.checks;
    const checks: Record<string, CheckState> = { ...probed };
    // The outbox lag is /readyz's own addition: gRPC health must not hear of it.
    if (query.includeOutboxLag !== true) delete checks[OUTBOX_LAG];
    if (this.draining) checks['draining'] = 'draining';
    const ready = Object.values(checks).every((state) => state === 'ok');
    if (query.includeOutboxLag !== true) this.publish(ready);
    return { ready, checks };
  }

  subscribe(listener: (ready: boolean) => void): Unsubscribe | undefined {
    if (this.subscriptionsFull) return undefined;
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  get subscriptionsFull(): boolean {
    return this.subscribers.size >= (this.deps.maxSubscribers ?? Infinity);
  }

  /** Probes every `intervalMs` so that subscribers learn of a change without asking. */
  monitor(intervalMs: number): void {
    this.timer ??= setInterval(() => void this.check(), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private publish(ready: boolean): void {
    const effective = ready && !this.draining;
    if (effective === this.lastReady) return;
    this.lastReady = effective;
    for (const listener of this.subscribers) listener(effective);
  }

  private async probe(): Promise<Record<string, CheckState>> {
    this.probes?.inc();
    const checks: Record<string, CheckState> = {};
    checks['database'] = await this.guard('database', async () => {
      await this.deps.knex.raw('select 1');
      const missing = await missingMigrations(this.deps.knex);
      return missing.length === 0 ? { state: 'ok' } : { state: 'migrations_pending', detail: { missing } };
    });
    checks['signing_key'] = this.deps.keysReady() ? 'ok' : 'missing';
    const { outboxLag, maxOutboxLagSeconds } = this.deps;
    if (outboxLag !== undefined && maxOutboxLagSeconds !== undefined) {
      checks[OUTBOX_LAG] = await this.guard(OUTBOX_LAG, async () => {
        const lagSeconds = await outboxLag();
        return lagSeconds <= maxOutboxLagSeconds ? { state: 'ok' } : { state: 'behind', detail: { lagSeconds } };
      });
    }
    return checks;
  }

  /** Runs one check within the probe timeout; its cause is logged once when its state changes. */
  private async guard(name: string, check: () => Promise<{ state: CheckState; detail?: object }>): Promise<CheckState> {
    const timeoutMs = this.deps.probeTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    let state: CheckState;
    let cause: unknown;
    let detail: object | undefined;
    try {
      ({ state, detail } = await Promise.race([check(), timeout]));
    } catch (error) {
      state = error instanceof ProbeTimeout ? 'timeout' : 'down';
      cause = error;
    } finally {
      clearTimeout(timer);
    }
    if (this.lastStates.get(name) !== state) {
      if (state !== 'ok') this.deps.logger?.warn({ check: name, state, ...detail, err: cause }, `readiness check ${name}: ${state}`);
      this.lastStates.set(name, state);
    }
    return state;
  }
}
