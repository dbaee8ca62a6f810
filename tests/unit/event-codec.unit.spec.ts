import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { User } from '../../src/domain/identity/user.entity.js';
import { Email } from '../../src/domain/identity/value-objects/email.value-object.js';
import { PasswordHash } from '../../src/domain/identity/value-objects/password-hash.value-object.js';
import { PersonName } from '../../src/domain/identity/value-objects/person-name.value-object.js';
import { UserRegisteredSchema } from '../../src/gen/identity/v1/events_pb.js';
import { encodeEvent, subjectFor } from '../../src/infrastructure/outbox/event-codec.js';

const HASH = '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';

function registered() {
  const parse = <T>(result: { ok: true; value: T } | { ok: false; error: string }): T => {
    if (!result.ok) throw new Error(result.error);
    return result.value;
  };
  return User.register(
    {
      email: parse(Email.parse('Zoë.Lee@Example.COM')),
      firstName: parse(PersonName.parse('Zoë')),
      lastName: parse(PersonName.parse('李')),
      passwordHash: PasswordHash.fromTrusted(HASH),
    },
    new Date('2026-02-03T04:05:06.789Z'),
  );
}

describe('encodeEvent (UserRegistered)', () => {
  const committedAt = new Date('2026-02-03T04:05:07.000Z');

  it('the payload decodes to the same UserRegistered', () => {
    const { user, event } = registered();
    const encoded = encodeEvent(event, 'identity-service', committedAt);
    const decoded = fromBinary(UserRegisteredSchema, encoded.payload);
    expect(decoded.eventId).toBe(event.eventId);
    expect(decoded.userId).toBe(user.id.value);
    expect(decoded.email).toBe('Zoë.Lee@example.com');
    expect(decoded.firstName).toBe('Zoë');
    expect(decoded.lastName).toBe('李');
    expect(decoded.occurredAt && timestampDate(decoded.occurredAt)).toEqual(event.occurredAt);
  });

  it('keeps the ids for the outbox row', () => {
    const { user, event } = registered();
    const encoded = encodeEvent(event, 'identity-service', committedAt);
    expect(encoded.eventId).toBe(event.eventId);
    expect(encoded.aggregateId).toBe(user.id.value);
    expect(encoded.eventType).toBe('identity.v1.UserRegistered');
  });

  it('sets the CloudEvents binary-mode headers of the contract', () => {
    const { event } = registered();
    const { headers } = encodeEvent(event, 'billing-identity', committedAt);
    expect(headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': event.eventId,
      'ce-type': 'identity.v1.UserRegistered',
      'ce-source': 'billing-identity',
      'ce-time': committedAt.toISOString(),
      'content-type': 'application/protobuf',
    });
  });

  it('carries no password hash in the payload or the headers', () => {
    const { event } = registered();
    const encoded = encodeEvent(event, 'identity-service', committedAt);
    expect(Buffer.from(encoded.payload).includes(Buffer.from(HASH))).toBe(false);
    expect(Buffer.from(encoded.payload).includes(Buffer.from('$2b$'))).toBe(false);
    expect(JSON.stringify(encoded.headers)).not.toContain('$2b$');
  });
});

describe('subjectFor', () => {
  it('puts UserRegistered on identity.user.registered under the configured prefix', () => {
    expect(subjectFor('identity', 'identity.v1.UserRegistered')).toBe('identity.user.registered');
    expect(subjectFor('staging', 'identity.v1.UserRegistered')).toBe('staging.user.registered');
  });

  it('maps every contract type, those of user management included (issue 14)', () => {
    expect(subjectFor('identity', 'identity.v1.UserDeleted')).toBe('identity.user.deleted');
    expect(subjectFor('identity', 'identity.v1.UserProfileUpdated')).toBe('identity.user.profile_updated');
    expect(subjectFor('identity', 'identity.v1.UserDisabled')).toBe('identity.user.disabled');
    expect(subjectFor('identity', 'identity.v1.UserEnabled')).toBe('identity.user.enabled');
  });

  it('has no subject for an event type outside events.proto', () => {
    expect(subjectFor('identity', 'identity.v1.NoSuchEvent')).toBeUndefined();
    // Names of Object.prototype members are not event types either.
    for (const type of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) expect(subjectFor('identity', type)).toBeUndefined();
  });
});
