import type { Clock } from '../../src/application/ports/clock.port.js';
import type { AttemptKeys, LoginThrottle } from '../../src/application/ports/login-throttle.port.js';
import { TooManyAttemptsError } from '../../src/domain/identity/identity.errors.js';
import { throttleDelaySeconds } from '../../src/domain/identity/login-throttle.policy.js';

interface FakeLoginThrottleOptions {
  readonly freeAttempts: number;
  readonly clientFreeAttempts: number;
  readonly windowSeconds: number;
  readonly maxDelaySeconds: number;
}

interface Counter {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number | undefined;
}

/**
 * The rules of PgLoginThrottle over a Map and an injected clock: begin() counts against the
 * email and the client before the check, a success clears the email and takes the client's
 * attempt back, an abandoned attempt is taken back from both. Delays come from the domain's
 * policy, as in the real one.
 */
export class FakeLoginThrottle implements LoginThrottle {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly clock: Clock,
    private readonly options: FakeLoginThrottleOptions = { freeAttempts: 5, clientFreeAttempts: 50, windowSeconds: 900, maxDelaySeconds: 900 },
  ) {}

  /** Failures counted against a key now ("email:…" or "client:…"). */
  failures(key: string): number {
    return this.counters.get(key)?.failures ?? 0;
  }

  begin(keys: AttemptKeys): Promise<void> {
    const now = this.clock.now().getTime();
    const entries = keysOf(keys).map((key) => [key, this.counter(key, now)] as const);
    const waitMs = Math.max(0, ...entries.map(([, c]) => (c.blockedUntil ?? 0) - now));
    if (waitMs > 0) return Promise.reject(new TooManyAttemptsError(Math.ceil(waitMs / 1000)));
    for (const [key, counter] of entries) {
      const windowOver = now - counter.lastFailureAt > this.options.windowSeconds * 1000;
      counter.failures = windowOver ? 1 : counter.failures + 1;
      counter.lastFailureAt = now;
      const delay = throttleDelaySeconds(counter.failures, this.freeAttempts(key), this.options.maxDelaySeconds);
      counter.blockedUntil = delay > 0 ? now + delay * 1000 : undefined;
    }
    return Promise.resolve();
  }

  succeeded(keys: AttemptKeys): Promise<void> {
    const [email, client] = keysOf(keys);
    this.counters.delete(email);
    this.takeBack(client);
    return Promise.resolve();
  }

  abandoned(keys: AttemptKeys): Promise<void> {
    for (const key of keysOf(keys)) this.takeBack(key);
    return Promise.resolve();
  }

  private takeBack(key: string): void {
    const counter = this.counters.get(key);
    if (counter === undefined) return;
    counter.failures = Math.max(0, counter.failures - 1);
    if (throttleDelaySeconds(counter.failures, this.freeAttempts(key), this.options.maxDelaySeconds) === 0) counter.blockedUntil = undefined;
  }

  private counter(key: string, now: number): Counter {
    let counter = this.counters.get(key);
    if (counter === undefined) this.counters.set(key, (counter = { failures: 0, lastFailureAt: now, blockedUntil: undefined }));
    return counter;
  }

  private freeAttempts(key: string): number {
    return key.startsWith('client:') ? this.options.clientFreeAttempts : this.options.freeAttempts;
  }
}

const keysOf = (keys: AttemptKeys): [email: string, client: string] => [`email:${keys.emailKey}`, `client:${keys.clientAddress}`];
