import type { FlushResult, OutboxOperations, OutboxStats } from '../../application/ports/outbox-operations.port.js';
import type { OutboxStore } from './outbox.store.js';

/** A relay opened for one flush, with what closes its NATS connection afterwards. */
export interface FlushingRelay {
  flush(): Promise<FlushResult>;
  close(): Promise<void>;
}

/** The outbox for operators: statistics and dead letters from the table, a flush through NATS. */
export class OutboxAdministration implements OutboxOperations {
  constructor(
    private readonly store: OutboxStore,
    /** Connects to NATS only for a flush: stats and retry-dead need none. */
    private readonly openRelay: () => FlushingRelay,
  ) {}

  stats(): Promise<OutboxStats> {
    return this.store.stats();
  }

  retryDead(): Promise<number> {
    return this.store.retryDead();
  }

  async flush(): Promise<FlushResult> {
    const relay = this.openRelay();
    try {
      return await relay.flush();
    } finally {
      await relay.close();
    }
  }
}
