import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { decodeEvent } from '@identity-service/events';
import {
  SessionRevokedReason,
  SessionRevokedSchema,
  UserDeletedSchema,
  UserDisabledSchema,
  UserEnabledSchema,
  UserPasswordChangedSchema,
  UserProfileUpdatedSchema,
  UserRegisteredSchema,
} from '../../../src/gen/identity/v1/events_pb.js';
import { eventOf, openTestEventStream, type TestEvent } from '../../../tests/helpers/event-stream.js';
import { UserProjection } from '../projection.js';
import { startSubscriber } from '../subscriber.js';

const NATS_URL = inject('natsUrl');

let directory: string;
let projection: UserProjection;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'subscriber-'));
  projection = UserProjection.open(join(directory, 'projection.sqlite'));
});
afterEach(async () => {
  projection.close();
  await rm(directory, { recursive: true, force: true });
});

const [ann, bob, cem] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()].sort();
const registered = (userId: string, email: string, firstName: string) => eventOf(UserRegisteredSchema, { userId, email, firstName, lastName: 'Doe' });

describe('the example subscriber', () => {
  it('keeps a projection equal to the users after registrations, updates, disable/enable and an erasure', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const changes: TestEvent[] = [
      registered(ann!, 'ann@example.com', 'Ann'),
      registered(bob!, 'bob@example.com', 'Bob'),
      eventOf(UserProfileUpdatedSchema, { userId: ann!, firstName: 'Anne', lastName: 'Lee' }),
      eventOf(UserDisabledSchema, { userId: bob!, reason: 'on leave' }),
      eventOf(UserPasswordChangedSchema, { userId: ann!, byAdmin: false }),
      eventOf(SessionRevokedSchema, { userId: ann!, reason: SessionRevokedReason.PASSWORD_CHANGED }),
      registered(cem!, 'cem@example.com', 'Cem'),
      eventOf(UserEnabledSchema, { userId: bob! }),
      eventOf(UserDisabledSchema, { userId: bob!, reason: 'left' }),
      eventOf(UserDeletedSchema, { userId: cem! }),
    ];
    // Half before the subscriber starts (it catches up from the first event), half while it runs.
    for (const change of changes.slice(0, 5)) await stream.publish(change);
    await using _subscriber = await startSubscriber({ jetstream: stream.js, projection, stream: stream.name, subjectPrefix: stream.prefix, durable: 'projection-test' });
    for (const change of changes.slice(5)) await stream.publish(change);

    await expect
      .poll(() => projection.users())
      .toEqual([
        { userId: ann, email: 'ann@example.com', firstName: 'Anne', lastName: 'Lee', status: 'active' },
        { userId: bob, email: 'bob@example.com', firstName: 'Bob', lastName: 'Doe', status: 'disabled' },
        { userId: cem, email: null, firstName: null, lastName: null, status: 'deleted' },
      ].sort((a, b) => a.userId!.localeCompare(b.userId!)));
  });

  it('runs as one command (main.ts) against a stream and stops cleanly on Ctrl-C', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    await stream.publish(registered(ann!, 'ann@example.com', 'Ann'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/subscriber/main.ts'], {
      cwd: new URL('../../..', import.meta.url),
      env: { PATH: process.env['PATH'] ?? '', NATS_URL, NATS_STREAM: stream.name, NATS_SUBJECT_PREFIX: stream.prefix, SUBSCRIBER_DB: join(directory, 'main.sqlite') },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    try {
      await expect.poll(() => stderr, { timeout: 20_000 }).toContain('applied identity.v1.UserRegistered');
      child.kill('SIGINT');
      expect(await exited).toEqual([0, null]);
      expect(stderr).toContain('stopped; 1 users in the projection');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('applies an event delivered twice only once', () => {
    const first = decodeEvent(message(registered(ann!, 'ann@example.com', 'Ann')));
    const rename = decodeEvent(message(eventOf(UserProfileUpdatedSchema, { userId: ann!, firstName: 'Anne', lastName: 'Lee' })));
    expect(projection.apply(first)).toBe(true);
    expect(projection.apply(rename)).toBe(true);
    // The registration again (a redelivery) must not undo the rename.
    expect(projection.apply(first)).toBe(false);
    expect(projection.users()).toEqual([{ userId: ann, email: 'ann@example.com', firstName: 'Anne', lastName: 'Lee', status: 'active' }]);
  });
});

/** A message as the relay publishes it, for decodeEvent without a stream. */
function message(event: TestEvent & { eventId: string }) {
  const headers = new Map([
    ['Nats-Msg-Id', event.eventId],
    ['ce-type', event.type],
  ]);
  return { subject: 'identity.user.x', data: event.payload, headers: { get: (name: string) => headers.get(name) ?? '', keys: () => [...headers.keys()] } };
}
