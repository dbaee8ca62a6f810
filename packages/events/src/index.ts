export { EVENT_TYPES, isEventType, subjectOf, type EventPayload, type EventType } from './event-types.js';
export { decodeEvent, type DecodedEvent, type EventMessage, type KnownEvent, type UnknownEvent } from './decode-event.js';
export { consumeEvents, type ConsumeEventsOptions, type Delivery, type EventConsumer } from './consume-events.js';
export type { Deliver } from './consumer-config.js';
export * from './gen/identity/v1/events_pb.js';
