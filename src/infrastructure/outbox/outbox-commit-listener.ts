import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { backoffMs } from './backoff.js';

/** The channel the outbox trigger notifies on commit (migration 0005). */
export const OUTBOX_CHANNEL = 'identity_outbox';

const MAX_RECONNECT_DELAY_MS = 4_000;

export interface OutboxCommitListenerOptions {
  readonly connectionString: string;
  /** Called on every commit that wrote outbox rows, in any replica, and after each (re)connect. */
  readonly onCommit: () => void;
  readonly logger: Logger;
}

/**
 * LISTENs for outbox commits on a connection of its own (LISTEN belongs to a session, so a
 * pooled connection will not do), reconnecting for ever with backoff. Losing it costs only
 * latency: the relay still polls.
 */
export class OutboxCommitListener {
  private stopped = false;
  private client: pg.Client | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: OutboxCommitListenerOptions) {}

  start(): void {
    this.running ??= this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
    await this.running;
  }

  private async listen(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      const client = new pg.Client({ connectionString: this.options.connectionString, application_name: 'identity-outbox-listener' });
      // Kept from the start, so that stop() can end a connection that is still being made.
      this.client = client;
      const lost = new Promise<unknown>((resolve) => {
        // `on`, not `once`: a second 'error' without a listener would crash the process.
        client.on('error', resolve);
        client.once('end', () => resolve(undefined));
      });
      try {
        client.on('notification', () => this.options.onCommit());
        await connectUnlessLost(client, lost);
        await client.query(`listen ${OUTBOX_CHANNEL}`);
        attempt = 0;
        // Commits made while we were not listening are found now rather than at the next poll.
        this.options.onCommit();
        const error = await lost;
        if (!this.stopped) this.options.logger.warn({ err: error }, 'outbox commit listener lost its connection; reconnecting');
      } catch (error) {
        if (!this.stopped) this.options.logger.warn({ err: error }, 'outbox commit listener could not connect; retrying');
      } finally {
        this.client = undefined;
        await client.end().catch(() => undefined);
      }
      // Capped low: after a database restart this reconnect is what wakes the relay (its own
      // backoff may have grown long), and one connection attempt every few seconds costs nothing.
      if (!this.stopped) await sleep(backoffMs(attempt + 1, 500, MAX_RECONNECT_DELAY_MS));
    }
  }
}

/**
 * pg leaves connect() pending for ever when end() comes first (stop() during a connect, or
 * a server gone at the wrong moment): the connection ending settles the attempt instead.
 */
async function connectUnlessLost(client: pg.Client, lost: Promise<unknown>): Promise<void> {
  const connecting = client.connect();
  connecting.catch(() => undefined); // settled by the race below, or never
  const ended = lost.then((error) => Promise.reject(error instanceof Error ? error : new Error('the connection ended while connecting')));
  await Promise.race([connecting, ended]);
}
