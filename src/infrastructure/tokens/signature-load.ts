/**
 * Where a token's signature is checked: on the event loop while few arrive, on libuv's thread
 * pool once many do. On the loop a check costs 80–100 µs of the loop but answers at once; on
 * the pool it costs the loop 9 µs and a second core does the rest, but each check waits for a
 * pool thread to wake, and on a machine whose cores are busy (bcrypt, the client, PostgreSQL)
 * that wait put VerifyToken's 99th percentile at 10 ms instead of 1 ms at 500 checks/s (bench
 * `mixed`). Past `perWindow` checks in a window (by default 200 in 100 ms: the loop would spend
 * a fifth of its time on signatures) the throughput of a second core is worth that wait.
 */
export class SignatureLoad {
  private windowStart = 0;
  private current = 0;
  private previous = 0;

  constructor(
    private readonly now: () => number,
    private readonly perWindow = 200,
    private readonly windowMs = 100,
  ) {}

  /** Counts one check; true when it should go to the thread pool. */
  toPool(): boolean {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      // A window with no check at all in between leaves nothing to carry over.
      this.previous = now - this.windowStart < 2 * this.windowMs ? this.current : 0;
      this.current = 0;
      this.windowStart = now;
    }
    this.current += 1;
    return this.previous > this.perWindow || this.current > this.perWindow;
  }
}
