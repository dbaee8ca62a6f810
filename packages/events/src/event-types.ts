import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import {
  SessionRevokedSchema,
  UserDeletedSchema,
  UserDisabledSchema,
  UserEnabledSchema,
  UserPasswordChangedSchema,
  UserProfileUpdatedSchema,
  UserRegisteredSchema,
} from './gen/identity/v1/events_pb.js';

/**
 * Every event type (the `ce-type` header, which is also the protobuf message's full name),
 * its schema and its subject below the prefix (`identity` by default). A new type comes
 * with a new subject; an existing one never moves (README, schema evolution).
 */
export const EVENT_TYPES = {
  'identity.v1.UserRegistered': { schema: UserRegisteredSchema, subject: 'user.registered' },
  'identity.v1.UserProfileUpdated': { schema: UserProfileUpdatedSchema, subject: 'user.profile_updated' },
  'identity.v1.UserPasswordChanged': { schema: UserPasswordChangedSchema, subject: 'user.password_changed' },
  'identity.v1.UserDisabled': { schema: UserDisabledSchema, subject: 'user.disabled' },
  'identity.v1.UserEnabled': { schema: UserEnabledSchema, subject: 'user.enabled' },
  'identity.v1.UserDeleted': { schema: UserDeletedSchema, subject: 'user.deleted' },
  'identity.v1.SessionRevoked': { schema: SessionRevokedSchema, subject: 'session.revoked' },
} as const satisfies Record<string, { schema: DescMessage; subject: string }>;

export type EventType = keyof typeof EVENT_TYPES;

/** The decoded protobuf message of one event type. */
export type EventPayload<T extends EventType> = MessageShape<(typeof EVENT_TYPES)[T]['schema']>;

export const isEventType = (type: string): type is EventType => Object.hasOwn(EVENT_TYPES, type);

/** The subject an event type is published on, e.g. `identity.user.registered`. */
export const subjectOf = (type: EventType, prefix = 'identity'): string => `${prefix}.${EVENT_TYPES[type].subject}`;
