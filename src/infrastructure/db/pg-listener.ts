import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { backoffMs } from '../outbox/backoff.js';

/**
 * Capped low: after a database restart the reconnect is what wakes the relay (its own backoff
 * may have grown long) and what resyncs the revocations, and one connection attempt every few
 * seconds costs nothing.
 */
const MAX_RECONNECT_DELAY_MS = 4_000;

export interface PgListenerOptions {
  readonly connectionString: string;
  readonly channel: string;
  /** Shown in pg_stat_activity, so an operator (or a test) can find the connection. */
  readonly applicationName: string;
  /** Names the listener in its log lines. */
  readonly name: string;
  /** Every NOTIFY on the channel, with its payload. */
  readonly onNotification: (payload: string) => void;
  /** After each (re)connect, once LISTEN is in place: whatever was missed meanwhile is to be read now. */
  readonly onListening: () => void;
  readonly logger: Logger;
}

/**
 * LISTENs on one channel on a connection of its own (LISTEN belongs to a session, so a pooled
 * connection will not do), reconnecting for ever with backoff.
 */
export class PgListener {
  private stopped = false;
  private client: pg.Client | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: PgListenerOptions) {}

  start(): void {
    this.running ??= this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
    await this.running;
  }

  private async listen(): Promise<void> {
    const { connectionString, applicationName, channel, name, logger } = this.options;
    for (let attempt = 1; !this.stopped; attempt++) {
      const client = new pg.Client({ connectionString, application_name: applicationName });
      // Kept from the start, so that stop() can end a connection that is still being made.
      this.client = client;
      const lost = new Promise<unknown>((resolve) => {
        // `on`, not `once`: a second 'error' without a listener would crash the process.
        client.on('error', resolve);
        client.once('end', () => resolve(undefined));
      });
      try {
        client.on('notification', (message) => this.options.onNotification(message.payload ?? ''));
        await connectUnlessLost(client, lost);
        await client.query(`listen ${channel}`);
        attempt = 0;
        this.options.onListening();
        const error = await lost;
        if (!this.stopped) logger.warn({ err: error }, `${name} lost its connection; reconnecting`);
      } catch (error) {
        if (!this.stopped) logger.warn({ err: error }, `${name} could not connect; retrying`);
      } finally {
        this.client = undefined;
        await client.end().catch(() => undefined);
      }
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
