import type { Logger } from 'pino';

export interface LeaseHeartbeatOptions {
  readonly leaseSeconds: number;
  /**
   * How long one claim may be renewed. Past it the claim is left to run out and another relay
   * may publish the row again: that copy must still fall inside JetStream's duplicate window,
   * counted from the first publish, which came after the claim.
   */
  readonly maxHoldMs: number;
}

export interface LeaseHeartbeatDeps {
  /** Extends the lease of those of `ids` this relay still holds; resolves with how many. */
  renew(ids: readonly string[]): Promise<number>;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * Keeps the relay's live claims leased: every lease/3 it renews the rows being published, so
 * the lease can be short (a relay that dies lets go of its rows within one lease) while a
 * slow batch is never taken over under a live relay. Three beats per lease leave room for one
 * renewal to fail or come late before the lease runs out.
 */
export class LeaseHeartbeat {
  /** Row id → when it was claimed (ms). */
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly deps: LeaseHeartbeatDeps,
    private readonly options: LeaseHeartbeatOptions,
  ) {
    this.now = deps.now ?? Date.now;
  }

  get intervalMs(): number {
    return (this.options.leaseSeconds * 1000) / 3;
  }

  /** Rows claimed and not yet settled. */
  get ids(): string[] {
    return [...this.held.keys()];
  }

  hold(ids: readonly string[]): void {
    const at = this.now();
    for (const id of ids) this.held.set(id, at);
  }

  drop(ids: readonly string[]): void {
    for (const id of ids) this.held.delete(id);
  }

  start(): void {
    // unref: a heartbeat alone never keeps the process alive.
    this.timer ??= setInterval(() => void this.beat(), this.intervalMs).unref();
  }

  /** Stops beating and waits for a renewal under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  /** One renewal; a beat while the previous one is still running is skipped, not queued. */
  beat(): Promise<void> {
    this.beating ??= this.renew().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async renew(): Promise<void> {
    const cutoff = this.now() - this.options.maxHoldMs;
    const ids = [...this.held].filter(([, at]) => at > cutoff).map(([id]) => id);
    if (ids.length === 0) return;
    try {
      const renewed = await this.deps.renew(ids);
      if (renewed < ids.length) this.deps.logger.debug({ asked: ids.length, renewed }, 'some outbox claims were settled or taken over before their renewal');
    } catch (error) {
      // The next beat tries again; should the lease run out meanwhile, another relay publishes the rows under the same msg id.
      this.deps.logger.warn({ err: error, claims: ids.length }, 'could not renew outbox claims');
    }
  }
}
