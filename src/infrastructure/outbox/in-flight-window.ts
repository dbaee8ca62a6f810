/**
 * At most `size` tasks at once, across every caller, started in the order they asked. The
 * relay publishes each batch through one shared window, so the next batch's publishes take
 * the slots the previous batch frees instead of waiting for its slowest ack.
 */
export class InFlightWindow {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`an in-flight window needs a size of at least 1, got ${size}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      // A freed slot goes straight to the next waiter, so the count never overshoots.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.active--;
    }
  }
}
