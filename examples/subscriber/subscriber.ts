import { consumeEvents, type Deliver, type EventConsumer } from '@identity-service/events';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { UserProjection } from './projection.js';

export interface SubscriberOptions {
  readonly jetstream: JetStreamClient;
  readonly projection: UserProjection;
  readonly stream?: string;
  /** NATS_SUBJECT_PREFIX of the service; default `identity`. */
  readonly subjectPrefix?: string;
  readonly durable?: string;
  /** A new projection starts from the stream's first event. */
  readonly deliver?: Deliver;
  readonly log?: (line: string) => void;
}

/** Keeps `projection` in step with the user events of the stream until stopped. */
export function startSubscriber(options: SubscriberOptions): Promise<EventConsumer> {
  const log = options.log ?? (() => undefined);
  return consumeEvents({
    jetstream: options.jetstream,
    stream: options.stream ?? 'IDENTITY',
    durable: options.durable ?? 'example-user-projection',
    // One filter subject, so the server filters (NATS 2.9 takes only one).
    subjects: [`${options.subjectPrefix ?? 'identity'}.user.>`],
    deliver: options.deliver ?? 'all',
    handle: (event, delivery) => {
      const applied = options.projection.apply(event);
      if (!event.known) log(`skipped an event this package cannot decode (${event.reason}): ${event.type} ${event.id}`);
      else log(`${applied ? 'applied' : 'already had'} ${event.type} ${event.id} (stream seq ${delivery.streamSequence})`);
    },
    onGiveUp: (event, error) => log(`gave up on ${event.type} ${event.id}: ${String(error)}`),
  });
}
