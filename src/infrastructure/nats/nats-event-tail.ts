import { DeliverPolicy, jetstream, type OrderedConsumerOptions } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { EventTail, TailListener, TailRequest } from '../../application/ports/event-tail.port.js';
import { eventAsJson } from './event-json.js';

function startAt(request: TailRequest): Partial<OrderedConsumerOptions> {
  if (request.fromSequence !== undefined) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: request.fromSequence };
  if (request.since !== undefined) return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: request.since.toISOString() };
  return { deliver_policy: DeliverPolicy.New };
}

/**
 * Follows the stream with an ordered consumer: ephemeral (nothing left on the server once it
 * stops), no acks, recreated by the client after a gap, so a tail never disturbs the
 * durable consumers of real subscribers.
 */
export class NatsEventTail implements EventTail, AsyncDisposable {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly allSubjects: string,
  ) {}

  static async open(servers: readonly string[], stream: string, subjectPrefix: string): Promise<NatsEventTail> {
    const nc = await connect({ servers: [...servers], name: 'identity-events-tail' });
    return new NatsEventTail(nc, stream, `${subjectPrefix}.>`);
  }

  async follow(request: TailRequest, listener: TailListener, signal: AbortSignal): Promise<void> {
    const consumer = await jetstream(this.nc).consumers.get(this.stream, { filter_subjects: request.subject ?? this.allSubjects, ...startAt(request) });
    const messages = await consumer.consume();
    const stop = () => void messages.close();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    listener.ready();
    try {
      for await (const message of messages) listener.event(eventAsJson(message));
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
