import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseHeartbeat } from '../../src/infrastructure/outbox/lease-heartbeat.js';

const logger = pino({ level: 'silent' });

describe('LeaseHeartbeat', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function heartbeat(renew: (ids: readonly string[]) => Promise<number>, leaseSeconds = 9, maxHoldMs = 60_000) {
    return new LeaseHeartbeat({ renew, logger, now: () => Date.now() }, { leaseSeconds, maxHoldMs });
  }

  it('renews the claims it holds every third of the lease, and stops renewing settled ones', async () => {
    const renewed: string[][] = [];
    const beat = heartbeat((ids) => (renewed.push([...ids]), Promise.resolve(ids.length)));
    beat.hold(['1', '2']);
    beat.start();
    await vi.advanceTimersByTimeAsync(2_999);
    expect(renewed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(renewed).toEqual([['1', '2']]);
    beat.drop(['1']);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(renewed).toEqual([['1', '2'], ['2']]);
    beat.drop(['2']);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(renewed).toHaveLength(2);
    await beat.stop();
  });

  it('renews a claim at most maxHoldMs after it was taken, then lets its lease run out', async () => {
    const renew = vi.fn((ids: readonly string[]) => Promise.resolve(ids.length));
    const beat = heartbeat(renew, 9, 10_000);
    beat.hold(['old']);
    beat.start();
    await vi.advanceTimersByTimeAsync(6_000);
    beat.hold(['new']);
    await vi.advanceTimersByTimeAsync(3_000); // t = 9 s: both still young enough
    expect(renew).toHaveBeenLastCalledWith(['old', 'new']);
    await vi.advanceTimersByTimeAsync(3_000); // t = 12 s: 'old' is past 10 s
    expect(renew).toHaveBeenLastCalledWith(['new']);
    await vi.advanceTimersByTimeAsync(3_000); // t = 15 s: 'new' is 9 s old
    expect(renew).toHaveBeenCalledTimes(5);
    await vi.advanceTimersByTimeAsync(30_000); // 'new' is past 10 s: nothing left to renew
    expect(renew).toHaveBeenCalledTimes(5);
    await beat.stop();
  });

  it('skips a beat while the previous renewal is still running, and survives a failed one', async () => {
    let finish: (n: number) => void = () => undefined;
    const renew = vi
      .fn<(ids: readonly string[]) => Promise<number>>()
      .mockImplementationOnce(() => new Promise((resolve) => (finish = resolve)))
      .mockRejectedValueOnce(new Error('database down'))
      .mockResolvedValue(1);
    const beat = heartbeat(renew);
    beat.hold(['1']);
    beat.start();
    await vi.advanceTimersByTimeAsync(9_000); // three beats, the first still hanging
    expect(renew).toHaveBeenCalledTimes(1);
    finish(1);
    await vi.advanceTimersByTimeAsync(3_000); // fails
    await vi.advanceTimersByTimeAsync(3_000); // tries again
    expect(renew).toHaveBeenCalledTimes(3);
    await beat.stop();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(renew).toHaveBeenCalledTimes(3);
  });
});
