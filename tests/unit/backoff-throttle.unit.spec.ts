import { describe, expect, it } from 'vitest';
import { throttleDelaySeconds } from '../../src/domain/identity/login-throttle.policy.js';
import { backoffMs } from '../../src/infrastructure/outbox/backoff.js';
import { InFlightWindow } from '../../src/infrastructure/outbox/in-flight-window.js';

const BASE = 1_000;
const MAX = 300_000;
const JUST_BELOW_ONE = 1 - Number.EPSILON;

/** The smallest and largest delay an attempt can get, found through the injected random source. */
const range = (attempt: number, base = BASE, max = MAX) => ({
  low: backoffMs(attempt, base, max, () => 0),
  high: backoffMs(attempt, base, max, () => JUST_BELOW_ONE),
});

describe('backoffMs (exponential, equal jitter)', () => {
  it('the first retry waits between half the base and the base', () => {
    expect(range(1)).toEqual({ low: BASE / 2, high: BASE });
  });

  it('doubles with each attempt until the cap', () => {
    expect(range(2)).toEqual({ low: BASE, high: 2 * BASE });
    expect(range(3)).toEqual({ low: 2 * BASE, high: 4 * BASE });
    for (let attempt = 1; attempt < 8; attempt++) {
      expect(range(attempt + 1).high).toBe(2 * range(attempt).high);
      expect(range(attempt + 1).low).toBe(2 * range(attempt).low);
    }
  });

  it('never exceeds the cap, and reaches it', () => {
    const highs = Array.from({ length: 40 }, (_, i) => range(i + 1).high);
    expect(Math.max(...highs)).toBe(MAX);
    expect(highs.at(-1)).toBe(MAX);
    expect(range(40).low).toBe(MAX / 2);
  });

  it('stays finite and capped for absurd attempt counts', () => {
    for (const attempt of [1_024, 10_000, 1e9, Number.MAX_SAFE_INTEGER]) {
      const { low, high } = range(attempt);
      expect(Number.isFinite(high)).toBe(true);
      expect(high).toBe(MAX);
      expect(low).toBe(MAX / 2);
    }
  });

  it('treats attempt 0 (or less) like the first attempt', () => {
    expect(range(0)).toEqual(range(1));
    expect(range(-5)).toEqual(range(1));
  });

  it('is never shorter than half its share nor longer than its share, for any random value', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const { low, high } = range(attempt);
      expect(low * 2).toBeCloseTo(high, -1);
      for (let i = 0; i <= 20; i++) {
        const value = backoffMs(attempt, BASE, MAX, () => i / 21);
        expect(value).toBeGreaterThanOrEqual(low);
        expect(value).toBeLessThanOrEqual(high);
      }
    }
  });

  it('spreads retries across the whole jitter window (uniform random in, uniform delays out)', () => {
    const samples = 1_000;
    const delays = Array.from({ length: samples }, (_, i) => backoffMs(5, BASE, MAX, () => i / samples));
    const { low, high } = range(5);
    expect(Math.min(...delays)).toBe(low);
    expect(Math.max(...delays)).toBeGreaterThan(high - (high - low) / 100);
    // Each quarter of the window receives about a quarter of the retries.
    const width = (high - low) / 4;
    const buckets = [0, 0, 0, 0];
    for (const delay of delays) buckets[Math.min(3, Math.floor((delay - low) / width))]! += 1;
    for (const count of buckets) expect(count).toBeGreaterThan(samples * 0.2);
    expect(new Set(delays).size).toBeGreaterThan(samples / 2);
  });

  it('with the default Math.random, two relays retrying the same attempt do not march in step', () => {
    const delays = Array.from({ length: 200 }, () => backoffMs(6, BASE, MAX));
    const { low, high } = range(6);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(low);
      expect(delay).toBeLessThanOrEqual(high);
    }
    expect(new Set(delays).size).toBeGreaterThan(100);
  });

  it('whole milliseconds only', () => {
    expect(Number.isInteger(backoffMs(3, 333, MAX, () => 0.123456))).toBe(true);
  });
});

describe('throttleDelaySeconds (login throttling)', () => {
  const FREE = 5;
  const CAP = 900;

  it('the free attempts cost nothing: fewer failures than the allowance means no delay', () => {
    for (let failures = 0; failures < FREE; failures++) expect(throttleDelaySeconds(failures, FREE, CAP)).toBe(0);
  });

  it('after the 5th failure the 6th attempt waits 1 s, then the delay doubles', () => {
    expect(throttleDelaySeconds(FREE, FREE, CAP)).toBe(1);
    expect(throttleDelaySeconds(FREE + 1, FREE, CAP)).toBe(2);
    expect(throttleDelaySeconds(FREE + 2, FREE, CAP)).toBe(4);
    for (let failures = FREE; failures < FREE + 9; failures++) {
      expect(throttleDelaySeconds(failures + 1, FREE, CAP)).toBe(2 * throttleDelaySeconds(failures, FREE, CAP));
    }
  });

  it('is capped at the maximum delay, and reaches it', () => {
    const delays = Array.from({ length: 30 }, (_, i) => throttleDelaySeconds(FREE + i, FREE, CAP));
    expect(Math.max(...delays)).toBe(CAP);
    expect(delays.at(-1)).toBe(CAP);
    // Never decreasing as failures grow.
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1]!);
  });

  it('is never infinite, never a permanent lockout, for huge failure counts', () => {
    for (const failures of [1_100, 10_000, 1e9, Number.MAX_SAFE_INTEGER]) {
      const delay = throttleDelaySeconds(failures, FREE, CAP);
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBe(CAP);
    }
  });

  it('follows its parameters: another allowance and another cap', () => {
    expect(throttleDelaySeconds(0, 1, 60)).toBe(0);
    expect(throttleDelaySeconds(1, 1, 60)).toBe(1);
    expect(throttleDelaySeconds(49, 50, 60)).toBe(0);
    expect(throttleDelaySeconds(50, 50, 60)).toBe(1);
    expect(throttleDelaySeconds(50 + 20, 50, 60)).toBe(60);
    expect(throttleDelaySeconds(FREE + 3, FREE, 5)).toBe(5);
  });
});

describe('InFlightWindow', () => {
  /** Runs every item through one window of `limit`, as the relay runs a batch's publishes. */
  const runBounded = <T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> => {
    const window = new InFlightWindow(limit);
    return Promise.all(items.map((item) => window.run(() => task(item))));
  };

  /** A task whose calls finish only when the test says so, recording how many run at once. */
  function controlledTask() {
    const pending = new Map<number, () => void>();
    const started: number[] = [];
    let inFlight = 0;
    let peak = 0;
    const task = (item: number) =>
      new Promise<string>((resolve) => {
        started.push(item);
        inFlight++;
        peak = Math.max(peak, inFlight);
        pending.set(item, () => {
          inFlight--;
          pending.delete(item);
          resolve(`done ${item}`);
        });
      });
    return { task, pending, started, peak: () => peak, inFlight: () => inFlight };
  }

  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('never has more than `limit` tasks in flight, and keeps `limit` busy while work remains', async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const control = controlledTask();
    const run = runBounded(items, 3, control.task);
    await tick();
    expect(control.inFlight()).toBe(3);
    // Finish tasks in a scrambled order; the pool refills one for one.
    while (control.pending.size > 0) {
      const keys = [...control.pending.keys()];
      control.pending.get(keys[keys.length - 1]!)!();
      await tick();
      expect(control.inFlight()).toBeLessThanOrEqual(3);
      const remaining = items.length - control.started.length;
      if (remaining > 0) expect(control.inFlight()).toBe(3);
    }
    await run;
    expect(control.peak()).toBe(3);
    expect([...control.started].sort((a, b) => a - b)).toEqual(items);
  });

  it('returns results in the order of the items, whatever order the tasks finish in', async () => {
    const items = [50, 10, 40, 0, 30, 20];
    const results = await runBounded(items, 3, (ms) => new Promise<string>((resolve) => setTimeout(() => resolve(`item ${ms}`), ms)));
    expect(results).toEqual(items.map((ms) => `item ${ms}`));
  });

  it('runs each item exactly once', async () => {
    const seen = new Map<number, number>();
    const items = Array.from({ length: 25 }, (_, i) => i);
    await runBounded(items, 4, async (item) => {
      seen.set(item, (seen.get(item) ?? 0) + 1);
      await tick();
    });
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(items);
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
  });

  it('with limit 1 runs strictly one after another', async () => {
    const control = controlledTask();
    const run = runBounded([1, 2, 3], 1, control.task);
    for (let i = 0; i < 3; i++) {
      await tick();
      expect(control.inFlight()).toBe(1);
      control.pending.values().next().value!();
    }
    await expect(run).resolves.toEqual(['done 1', 'done 2', 'done 3']);
    expect(control.peak()).toBe(1);
  });

  it('with a limit above the number of items runs them all at once', async () => {
    const control = controlledTask();
    const run = runBounded([1, 2], 64, control.task);
    await tick();
    expect(control.inFlight()).toBe(2);
    for (const finish of [...control.pending.values()]) finish();
    await expect(run).resolves.toEqual(['done 1', 'done 2']);
  });

  it('an empty list gives an empty result without calling the task', async () => {
    let calls = 0;
    await expect(runBounded([], 4, () => Promise.resolve(++calls))).resolves.toEqual([]);
    expect(calls).toBe(0);
  });

  it('a failing task rejects the whole run', async () => {
    const failure = new Error('publish failed');
    await expect(runBounded([1, 2, 3], 2, (item) => (item === 2 ? Promise.reject(failure) : Promise.resolve(item)))).rejects.toBe(failure);
  });

  it.each([0, -1, Number.NaN])('refuses a size of %s rather than silently running nothing', (limit) => {
    expect(() => new InFlightWindow(limit)).toThrow(RangeError);
  });

  it('is shared by concurrent batches: the next batch takes the slots the first one frees', async () => {
    const control = controlledTask();
    const window = new InFlightWindow(3);
    const first = Promise.all([1, 2, 3].map((item) => window.run(() => control.task(item))));
    const second = Promise.all([4, 5, 6].map((item) => window.run(() => control.task(item))));
    await tick();
    expect(control.started).toEqual([1, 2, 3]);
    control.pending.get(2)!();
    await tick();
    // The first batch still waits for 1 and 3, yet the second already uses the freed slot.
    expect(control.started).toEqual([1, 2, 3, 4]);
    expect(control.inFlight()).toBe(3);
    for (const item of [1, 3, 4, 5, 6]) {
      await tick();
      control.pending.get(item)!();
    }
    await expect(Promise.all([first, second])).resolves.toEqual([
      ['done 1', 'done 2', 'done 3'],
      ['done 4', 'done 5', 'done 6'],
    ]);
    expect(control.peak()).toBe(3);
  });
});
