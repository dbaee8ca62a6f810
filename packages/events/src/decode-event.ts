import { fromBinary } from '@bufbuild/protobuf';
import { EVENT_TYPES, isEventType, type EventPayload, type EventType } from './event-types.js';

/** What decodeEvent reads of a message: a JetStream JsMsg, a core NATS Msg, or a test's own. */
export interface EventMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: { get(name: string): string; keys(): string[] } | undefined;
}

/** Fields every event has, known or not. */
interface EventEnvelope {
  /** The event id: `Nats-Msg-Id`, equal to `ce-id`. The key for idempotent handling. */
  readonly id: string;
  readonly subject: string;
  /** `ce-source`: which service wrote it. */
  readonly source: string;
  /** `ce-time`: the commit time, or undefined when the header is missing or unreadable. */
  readonly time: Date | undefined;
  readonly headers: Readonly<Record<string, string>>;
}

export type KnownEvent = {
  [T in EventType]: EventEnvelope & { readonly known: true; readonly type: T; readonly event: EventPayload<T> };
}[EventType];

/**
 * An event this version of the package cannot decode: a type added after it was built
 * (`unknown-type`), or bytes that do not parse as its type (`malformed`). It keeps the raw
 * payload and headers so the subscriber can log, park or forward it.
 */
export interface UnknownEvent extends EventEnvelope {
  readonly known: false;
  readonly reason: 'unknown-type' | 'malformed';
  /** `ce-type` as received; empty when the header is missing. */
  readonly type: string;
  readonly data: Uint8Array;
  readonly error?: string;
}

export type DecodedEvent = KnownEvent | UnknownEvent;

/** Decodes one message; never throws, so one odd message cannot stop a consumer. */
export function decodeEvent(message: EventMessage): DecodedEvent {
  const headers = headersOf(message);
  const type = headers['ce-type'] ?? '';
  const envelope: EventEnvelope = {
    id: headers['Nats-Msg-Id'] ?? headers['ce-id'] ?? '',
    subject: message.subject,
    source: headers['ce-source'] ?? '',
    time: timeOf(headers['ce-time']),
    headers,
  };
  if (!isEventType(type)) return { ...envelope, known: false, reason: 'unknown-type', type, data: message.data };
  try {
    return { ...envelope, known: true, type, event: fromBinary(EVENT_TYPES[type].schema, message.data) } as KnownEvent;
  } catch (error) {
    return { ...envelope, known: false, reason: 'malformed', type, data: message.data, error: error instanceof Error ? error.message : String(error) };
  }
}

function headersOf(message: EventMessage): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of message.headers?.keys() ?? []) result[name] = message.headers?.get(name) ?? '';
  return result;
}

function timeOf(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : time;
}
