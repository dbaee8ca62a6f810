import { Readiness, type ReadinessReport } from '../../src/infrastructure/observability/readiness.js';

/**
 * Readiness with the verdict set by the test instead of probed from a database. It extends
 * the class the routes take today; once readiness is a port (src/application/ports), this
 * implements the port instead, and the tests, which only call set() and startDraining(),
 * stay as they are.
 */
export class FakeReadiness extends Readiness {
  #ready = true;

  constructor() {
    // Never probed: check() is overridden, so no database is needed.
    super({ knex: undefined as never, keysReady: () => true });
  }

  /** The verdict from now on; watchers hear of it as of a probe that found it. */
  set(ready: boolean): void {
    this.#ready = ready;
    this.emit('change', ready);
  }

  override check(): Promise<ReadinessReport> {
    return Promise.resolve({ ready: this.#ready, checks: { database: this.#ready ? 'ok' : 'down' } });
  }
}
