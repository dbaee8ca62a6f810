import type { Clock } from '../../src/application/ports/clock.port.js';

/** A clock that moves only when the test moves it, so "later" never needs a real wait. */
export class FakeClock implements Clock {
  #now: number;

  constructor(start: Date | string = '2026-01-01T00:00:00Z') {
    this.#now = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}
