import type { ReadinessPort, ReadinessReport, Unsubscribe } from '../../src/application/ports/readiness.port.js';

/**
 * Readiness with the verdict set by the test instead of probed, and the rules of the real one
 * (infrastructure/observability/readiness): draining makes it not ready for good, subscribers
 * hear only changes of the effective verdict, and subscriptions stop at a cap.
 */
export class FakeReadiness implements ReadinessPort {
  #ready = true;
  #draining = false;
  #published: boolean | undefined;
  readonly #subscribers = new Set<(ready: boolean) => void>();

  constructor(private readonly maxSubscribers = Number.POSITIVE_INFINITY) {}

  get isDraining(): boolean {
    return this.#draining;
  }

  get subscriptionsFull(): boolean {
    return this.#subscribers.size >= this.maxSubscribers;
  }

  /** Watch streams holding a subscription now. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  check(): Promise<ReadinessReport> {
    const report: ReadinessReport = {
      ready: this.#ready && !this.#draining,
      checks: { database: this.#ready ? 'ok' : 'down', ...(this.#draining && { draining: 'draining' as const }) },
    };
    return Promise.resolve(report);
  }

  subscribe(listener: (ready: boolean) => void): Unsubscribe | undefined {
    if (this.subscriptionsFull) return undefined;
    this.#subscribers.add(listener);
    return () => this.#subscribers.delete(listener);
  }

  /** The verdict from now on; subscribers hear of it as of a probe that found it. */
  set(ready: boolean): void {
    this.#ready = ready;
    this.#publish();
  }

  startDraining(): void {
    this.#draining = true;
    this.#publish();
  }

  #publish(): void {
    const effective = this.#ready && !this.#draining;
    if (effective === this.#published) return;
    this.#published = effective;
    for (const listener of this.#subscribers) listener(effective);
  }
}
