import { createRegistry, fromBinary, toJson } from '@bufbuild/protobuf';
import type { JsMsg } from '@nats-io/jetstream';
import type { TailedEvent } from '../../application/ports/event-tail.port.js';
import { file_identity_v1_events } from '../../gen/identity/v1/events_pb.js';

/** ce-type is the message's full protobuf name, so the registry of events.proto finds each schema. */
const EVENTS = createRegistry(file_identity_v1_events);

/** A stream message as the JSON line `events tail` prints; never throws. */
export function eventAsJson(message: Pick<JsMsg, 'seq' | 'subject' | 'data' | 'headers'>): TailedEvent {
  const header = (name: string) => message.headers?.get(name) ?? '';
  const envelope = {
    seq: message.seq,
    subject: message.subject,
    id: header('Nats-Msg-Id') || header('ce-id'),
    type: header('ce-type'),
    source: header('ce-source'),
    time: header('ce-time'),
  };
  const undecoded = (reason: string) => ({ ...envelope, undecoded: { reason, payloadBase64: Buffer.from(message.data).toString('base64') } });
  const schema = EVENTS.getMessage(envelope.type);
  if (schema === undefined) return undecoded('unknown event type');
  try {
    return { ...envelope, event: toJson(schema, fromBinary(schema, message.data)) };
  } catch (error) {
    return undecoded(`payload does not parse as ${envelope.type}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
