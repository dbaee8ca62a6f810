/**
 * Exponential backoff with "equal jitter": half the exponential delay is kept, the other half
 * drawn at random, so retries of many rows (or many relays) spread out instead of marching
 * in step, while each still waits at least half its share.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
