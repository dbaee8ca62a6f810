import { describe, expect, it } from 'vitest';
import { firstDelayedFailure, throttleDelaySeconds } from '../../src/domain/identity/login-throttle.policy.js';
import { backoffMs } from '../../src/infrastructure/outbox/backoff.js';

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

  it('firstDelayedFailure is the count from which there is a delay, for any allowance and cap', () => {
    for (const free of [1, 2, 5, 30]) {
      for (const cap of [1, 60, 900]) {
        for (let failures = 0; failures < free + 12; failures++) {
          expect(throttleDelaySeconds(failures, free, cap) > 0, `${failures} failures, ${free} free, cap ${cap}`).toBe(failures >= firstDelayedFailure(free));
        }
      }
    }
  });
});
