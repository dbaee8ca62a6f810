/**
 * How long a key (an email or a client address) must wait after `failures` failed logins:
 * nothing for the first `freeAttempts - 1`, then 1 s, doubling with each further failure up
 * to `maxDelaySeconds`. The cap is what keeps an attacker from locking an account for good.
 */
export function throttleDelaySeconds(failures: number, freeAttempts: number, maxDelaySeconds: number): number {
  if (failures < freeAttempts) return 0;
  return Math.min(2 ** (failures - freeAttempts), maxDelaySeconds);
}

/**
 * The fewest failures that call for a delay: throttleDelaySeconds is positive from this count
 * on and zero below it (for the store, which takes an attempt back in SQL).
 */
export function firstDelayedFailure(freeAttempts: number): number {
  return freeAttempts;
}
