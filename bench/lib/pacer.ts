import { nowMs } from './clock.js';

/**
 * Starts `start(plannedAt)` on a fixed schedule until `until` (epoch ms), without waiting for
 * earlier ones to finish: an open system, where a slow server gets more work in flight rather
 * than fewer arrivals, as in production. Resolves when every started task has settled.
 */
export async function paced(ratePerSecond: number, until: number, start: (plannedAt: number) => Promise<void>): Promise<void> {
  const interval = 1000 / ratePerSecond;
  const inFlight = new Set<Promise<void>>();
  let planned = nowMs();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMs();
      for (; planned <= now && planned < until; planned += interval) {
        const task = start(planned).finally(() => inFlight.delete(task));
        inFlight.add(task);
      }
      if (planned >= until) resolve();
      else setTimeout(tick, Math.max(0, Math.min(planned - nowMs(), 1)));
    };
    tick();
  });
  await Promise.all(inFlight);
}
