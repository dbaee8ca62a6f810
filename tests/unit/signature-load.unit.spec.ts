/** Signatures go to the thread pool only while many arrive (issue 16: latency at a low rate, throughput at a high one). */
import { describe, expect, it } from 'vitest';
import { SignatureLoad } from '../../src/infrastructure/tokens/signature-load.js';

function load() {
  let now = 1_000;
  const signatures = new SignatureLoad(() => now, 200, 100);
  const checks = (count: number) => Array.from({ length: count }, () => signatures.toPool());
  return { checks, advance: (ms: number) => void (now += ms) };
}

describe('SignatureLoad', () => {
  it('keeps checks on the event loop up to 200 in a window, then sends the rest to the pool', () => {
    const { checks } = load();
    const decided = checks(250);
    expect(decided.slice(0, 200).every((toPool) => !toPool)).toBe(true);
    expect(decided.slice(200).every((toPool) => toPool)).toBe(true);
  });

  it('sends every check of the next window to the pool after a busy one, and returns to the loop after a quiet one', () => {
    const { checks, advance } = load();
    checks(300);
    advance(100);
    expect(checks(1)).toEqual([true]);
    checks(10);
    advance(100);
    expect(checks(1)).toEqual([false]);
  });

  it('forgets a busy window once a whole window passed without a check', () => {
    const { checks, advance } = load();
    checks(300);
    advance(250);
    expect(checks(1)).toEqual([false]);
  });
});
