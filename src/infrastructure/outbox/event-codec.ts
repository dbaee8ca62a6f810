import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { DomainEvent } from '../../domain/identity/events/user-registered.event.js';
import { SessionRevokedReason } from '../../domain/identity/session-revoked-reason.js';
import {
  SessionRevokedReason as SessionRevokedReasonMessage,
  SessionRevokedSchema,
  UserDeletedSchema,
  UserDisabledSchema,
  UserEnabledSchema,
  UserPasswordChangedSchema,
  UserProfileUpdatedSchema,
  UserRegisteredSchema,
} from '../../gen/identity/v1/events_pb.js';

/** An event as the outbox stores it and the relay publishes it. */
export interface EncodedEvent {
  readonly eventId: string;
  readonly eventType: string;
  readonly aggregateId: string;
  readonly payload: Uint8Array;
  readonly headers: Record<string, string>;
}

/**
 * Where each event type goes, below the subject prefix (`identity` by default): every type of
 * events.proto, with the subjects the contract fixes (since user management, issue 14, this
 * build writes all of them). asyncapi.yaml
 * is checked against this table (tests/unit/asyncapi.unit.spec.ts).
 */
export const SUBJECTS: Readonly<Record<string, string>> = {
  'identity.v1.UserRegistered': 'user.registered',
  'identity.v1.UserProfileUpdated': 'user.profile_updated',
  'identity.v1.UserPasswordChanged': 'user.password_changed',
  'identity.v1.UserDisabled': 'user.disabled',
  'identity.v1.UserEnabled': 'user.enabled',
  'identity.v1.UserDeleted': 'user.deleted',
  'identity.v1.SessionRevoked': 'session.revoked',
};

const REASON: Readonly<Record<SessionRevokedReason, SessionRevokedReasonMessage>> = {
  [SessionRevokedReason.Logout]: SessionRevokedReasonMessage.LOGOUT,
  [SessionRevokedReason.RefreshTokenReused]: SessionRevokedReasonMessage.REFRESH_TOKEN_REUSED,
  [SessionRevokedReason.PasswordChanged]: SessionRevokedReasonMessage.PASSWORD_CHANGED,
  [SessionRevokedReason.UserDisabled]: SessionRevokedReasonMessage.USER_DISABLED,
  [SessionRevokedReason.UserDeleted]: SessionRevokedReasonMessage.USER_DELETED,
  [SessionRevokedReason.Admin]: SessionRevokedReasonMessage.ADMIN,
};

/** The protobuf binary of an event (the payload published as is). */
function payloadOf(event: DomainEvent): Uint8Array {
  const occurredAt = timestampFromDate(event.occurredAt);
  switch (event.type) {
    case 'identity.v1.UserRegistered':
      return toBinary(
        UserRegisteredSchema,
        create(UserRegisteredSchema, { eventId: event.eventId, userId: event.userId, email: event.email, firstName: event.firstName, lastName: event.lastName, occurredAt }),
      );
    case 'identity.v1.UserPasswordChanged':
      return toBinary(UserPasswordChangedSchema, create(UserPasswordChangedSchema, { eventId: event.eventId, userId: event.userId, byAdmin: event.byAdmin, occurredAt }));
    case 'identity.v1.UserProfileUpdated':
      return toBinary(
        UserProfileUpdatedSchema,
        create(UserProfileUpdatedSchema, { eventId: event.eventId, userId: event.userId, firstName: event.firstName, lastName: event.lastName, occurredAt }),
      );
    case 'identity.v1.UserDisabled':
      return toBinary(UserDisabledSchema, create(UserDisabledSchema, { eventId: event.eventId, userId: event.userId, reason: event.reason, occurredAt }));
    case 'identity.v1.UserEnabled':
      return toBinary(UserEnabledSchema, create(UserEnabledSchema, { eventId: event.eventId, userId: event.userId, occurredAt }));
    case 'identity.v1.UserDeleted':
      return toBinary(UserDeletedSchema, create(UserDeletedSchema, { eventId: event.eventId, userId: event.userId, occurredAt }));
    case 'identity.v1.SessionRevoked':
      return toBinary(
        SessionRevokedSchema,
        create(SessionRevokedSchema, {
          eventId: event.eventId,
          userId: event.userId,
          sessionId: event.sessionId,
          reason: REASON[event.reason],
          ...(event.tokensValidAfter !== undefined && { tokensValidAfter: timestampFromDate(event.tokensValidAfter) }),
          occurredAt,
        }),
      );
  }
}

/** The subject for a stored event type, or undefined for a type this build cannot publish. */
export const subjectFor = (prefix: string, eventType: string): string | undefined => {
  // Own keys only: a stored type such as `constructor` must not find Object.prototype's members.
  const suffix = Object.hasOwn(SUBJECTS, eventType) ? SUBJECTS[eventType] : undefined;
  return suffix === undefined ? undefined : `${prefix}.${suffix}`;
};

/** Protobuf payload and CloudEvents binary-mode headers, fixed when the event is written. */
export function encodeEvent(event: DomainEvent, source: string, now: Date): EncodedEvent {
  return {
    eventId: event.eventId,
    eventType: event.type,
    aggregateId: event.aggregateId,
    payload: payloadOf(event),
    headers: cloudEventHeaders(event.eventId, event.type, source, now),
  };
}

/** CloudEvents binary-mode headers of one event (the relay adds `Nats-Msg-Id` = event id when it publishes). */
export function cloudEventHeaders(eventId: string, eventType: string, source: string, now: Date): Record<string, string> {
  return {
    'ce-specversion': '1.0',
    'ce-id': eventId,
    'ce-type': eventType,
    'ce-source': source,
    'ce-time': now.toISOString(),
    'content-type': 'application/protobuf',
  };
}
