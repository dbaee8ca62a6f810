import { randomUUID } from 'node:crypto';
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { cloudEventHeaders, subjectFor } from '../../src/infrastructure/outbox/event-codec.js';
import { deleteStream } from './nats.js';

/** A stream of the test's own (name and subject prefix unique to it), shaped as the service provisions IDENTITY. */
export interface TestEventStream extends AsyncDisposable {
  readonly name: string;
  readonly prefix: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  /** Publishes as the relay does; resolves to the stream sequence. */
  publish(event: TestEvent): Promise<number>;
}

export interface TestEvent {
  readonly type: string;
  readonly payload: Uint8Array;
  readonly eventId?: string;
  /** Where an unknown type goes; the relay's table decides for the known ones. */
  readonly subject?: string;
}

export async function openTestEventStream(url: string): Promise<TestEventStream> {
  const tag = randomUUID().replaceAll('-', '').slice(0, 12);
  const name = `EVENTS_${tag}`;
  const prefix = `ev${tag}`;
  const nc = await connect({ servers: url.split(',') });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${prefix}.>`], storage: StorageType.File, duplicate_window: nanos(20 * 60_000) });
  const js = jetstream(nc);
  return {
    name,
    prefix,
    nc,
    js,
    async publish(event) {
      const eventId = event.eventId ?? randomUUID();
      const subject = subjectFor(prefix, event.type) ?? `${prefix}.${event.subject ?? 'unmapped'}`;
      const hdrs = headers();
      for (const [key, value] of Object.entries(cloudEventHeaders(eventId, event.type, 'identity-service', new Date()))) hdrs.set(key, value);
      // As OutboxRelay.publish: msgID = event id (Nats-Msg-Id), the row's headers, the stream expected.
      const ack = await js.publish(subject, event.payload, { msgID: eventId, headers: hdrs, expect: { streamName: name } });
      return ack.seq;
    },
    async [Symbol.asyncDispose]() {
      await nc.close();
      await deleteStream(url, name);
    },
  };
}

/** An event of `schema` as the service encodes it: protobuf binary with its event id and occurrence time. */
export function eventOf<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): TestEvent & { eventId: string } {
  const eventId = randomUUID();
  const message = create(schema, { eventId, occurredAt: timestampFromDate(new Date()), ...init });
  return { type: schema.typeName, payload: toBinary(schema, message), eventId };
}
