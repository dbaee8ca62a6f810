import type { Logger } from 'pino';
import { PgListener } from '../db/pg-listener.js';

/** The channel the outbox trigger notifies on commit (migration 0005). */
export const OUTBOX_CHANNEL = 'identity_outbox';

export interface OutboxCommitListenerOptions {
  readonly connectionString: string;
  /** Called on every commit that wrote outbox rows, in any replica, and after each (re)connect. */
  readonly onCommit: () => void;
  readonly logger: Logger;
}

/**
 * LISTENs for outbox commits (see PgListener), waking the relay on each. Losing the
 * connection costs only latency: the relay still polls.
 */
export class OutboxCommitListener {
  private readonly listener: PgListener;

  constructor(options: OutboxCommitListenerOptions) {
    this.listener = new PgListener({
      connectionString: options.connectionString,
      channel: OUTBOX_CHANNEL,
      applicationName: 'identity-outbox-listener',
      name: 'outbox commit listener',
      // Commits made while we were not listening are found now rather than at the next poll.
      // The debug line comes after that wake-up: from then on a commit elsewhere reaches the
      // relay by NOTIFY alone (tests wait for it).
      onListening: () => {
        options.onCommit();
        options.logger.debug('outbox commit listener listening');
      },
      onNotification: options.onCommit,
      logger: options.logger,
    });
  }

  start(): void {
    this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }
}
