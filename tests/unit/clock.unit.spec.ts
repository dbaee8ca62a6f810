import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/application/ports/clock.port.js';

describe('systemClock', () => {
  it('reads the time of the machine, fresh on every call', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now.getTime()).toBeGreaterThanOrEqual(before);
    expect(now.getTime()).toBeLessThanOrEqual(Date.now());
    expect(systemClock.now()).not.toBe(now);
  });
});
