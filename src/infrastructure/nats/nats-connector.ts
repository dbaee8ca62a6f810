import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { provisionStream, type StreamSettings } from './stream-provisioner.js';

export interface NatsConnectorOptions {
  readonly url: string;
  readonly stream: StreamSettings;
  readonly logger: Logger;
}

/**
 * Holds the NATS connection. It keeps trying to connect for ever (NATS down at start is
 * not a reason to stop serving: events wait in the outbox) and provisions the stream on the
 * first connection.
 */
export class NatsConnector {
  private connection: NatsConnection | undefined;
  private client: JetStreamClient | undefined;
  private readonly ready: Promise<JetStreamClient>;
  private closing = false;

  constructor(private readonly options: NatsConnectorOptions) {
    this.ready = this.connectAndProvision();
    // Failures are read through whenReady(); an unobserved one must not crash the process.
    this.ready.catch(() => undefined);
  }

  /** Resolves once connected with the stream in place; rejects if provisioning failed. */
  whenReady(): Promise<JetStreamClient> {
    return this.ready;
  }

  /** The client while the connection is up; undefined while connecting or reconnecting. */
  get jetstream(): JetStreamClient | undefined {
    return this.connection !== undefined && !this.connection.isClosed() && this.isConnected ? this.client : undefined;
  }

  private isConnected = false;

  async close(): Promise<void> {
    this.closing = true;
    if (this.connection !== undefined && !this.connection.isClosed()) await this.connection.drain();
  }

  private async connectAndProvision(): Promise<JetStreamClient> {
    const { url, logger } = this.options;
    const nc = await connect({
      servers: url,
      name: 'identity-service',
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
    });
    if (this.closing) {
      await nc.close();
      throw new Error('closed before NATS connected');
    }
    this.connection = nc;
    this.isConnected = true;
    logger.info({ server: nc.getServer() }, 'connected to NATS');
    void this.watchStatus(nc);
    await provisionStream(await jetstreamManager(nc), this.options.stream, logger);
    this.client = jetstream(nc);
    return this.client;
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.isConnected = false;
        this.options.logger.warn({ server: status.server }, 'disconnected from NATS; reconnecting');
      } else if (status.type === 'reconnect') {
        this.isConnected = true;
        this.options.logger.info({ server: status.server }, 'reconnected to NATS');
      }
    }
  }
}
