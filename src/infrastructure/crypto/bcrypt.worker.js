// Runs in a piscina worker thread. bcrypt's synchronous calls keep the work on this thread:
// its async calls would queue on libuv's shared pool, where WebCrypto and DNS wait behind them.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import bcrypt from 'bcrypt';

/** Nice value of hashing threads: the event loop (nice 0) gets ~9 times their share of a busy core. */
const HASHING_NICE = 10;

// On a saturated machine the scheduler would otherwise give a hash the same share as the
// event loop, and VerifyToken would wait for timeslices. Linux applies setpriority() to a
// single thread when given its thread id, which /proc/thread-self names; elsewhere this is
// skipped and hashing keeps the normal priority.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, HASHING_NICE);
} catch {
  // not Linux, or not permitted: hashing runs at normal priority
}

/** @param {{ password: string, cost: number }} task */
export function hash({ password, cost }) {
  return bcrypt.hashSync(password, cost);
}

/** @param {{ password: string, hash: string }} task */
export function compare({ password, hash }) {
  return bcrypt.compareSync(password, hash);
}
