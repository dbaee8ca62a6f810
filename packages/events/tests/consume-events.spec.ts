import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
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
import { eventOf, openTestEventStream, type TestEventStream } from '../../../tests/helpers/event-stream.js';
import { consumeEvents, type ConsumeEventsOptions, type DecodedEvent, type Delivery } from '../src/index.js';

const NATS_URL = inject('natsUrl');

/** Events the published ones are compared with: the service's own generated schemas encode them. */
function everyType() {
  const userId = crypto.randomUUID();
  return [
    eventOf(UserRegisteredSchema, { userId, email: 'ann@example.com', firstName: 'Ann', lastName: 'Lee' }),
    eventOf(UserProfileUpdatedSchema, { userId, firstName: 'Anne', lastName: 'Lee' }),
    eventOf(UserPasswordChangedSchema, { userId, byAdmin: true }),
    eventOf(UserDisabledSchema, { userId, reason: 'left the company' }),
    eventOf(UserEnabledSchema, { userId }),
    eventOf(SessionRevokedSchema, { userId, sessionId: crypto.randomUUID(), reason: SessionRevokedReason.LOGOUT }),
    eventOf(UserDeletedSchema, { userId }),
  ];
}

/** Runs a consumer of `stream` that records every delivery; stopped by `await using`. */
async function recorder(stream: TestEventStream, options: Partial<ConsumeEventsOptions> = {}) {
  const received: { event: DecodedEvent; delivery: Delivery; at: number }[] = [];
  const consumer = await consumeEvents({
    jetstream: stream.js,
    stream: stream.name,
    durable: `test-${crypto.randomUUID().slice(0, 8)}`,
    deliver: 'all',
    handle: (event, delivery) => void received.push({ event, delivery, at: performance.now() }),
    ...options,
  });
  return { received, consumer, [Symbol.asyncDispose]: () => consumer.stop() };
}

const types = (received: { event: DecodedEvent }[]) => received.map(({ event }) => event.type);

describe('consumeEvents against a real stream', () => {
  it('receives and decodes each event type, with the event id from Nats-Msg-Id', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const published = everyType();
    for (const event of published) await stream.publish(event);
    await using run = await recorder(stream);

    await expect.poll(() => run.received.length).toBe(published.length);
    expect(types(run.received)).toEqual(published.map((event) => event.type));
    for (const [i, { event }] of run.received.entries()) {
      if (!event.known) throw new Error(`event ${i} was not decoded: ${event.reason}`);
      expect(event.id).toBe(published[i]!.eventId);
      expect(event.headers['Nats-Msg-Id']).toBe(published[i]!.eventId);
      expect(event.event.eventId).toBe(published[i]!.eventId);
      expect(event.subject.startsWith(`${stream.prefix}.`)).toBe(true);
      expect(event.source).toBe('identity-service');
      expect(event.time).toBeInstanceOf(Date);
    }
    const [registered, , , disabled, , revoked] = run.received.map(({ event }) => event);
    expect(registered?.known && registered.type === 'identity.v1.UserRegistered' && registered.event.email).toBe('ann@example.com');
    expect(disabled?.known && disabled.type === 'identity.v1.UserDisabled' && disabled.event.reason).toBe('left the company');
    expect(revoked?.known && revoked.type === 'identity.v1.SessionRevoked' && revoked.event.reason).toBe(SessionRevokedReason.LOGOUT);
  });

  it('redelivers to a handler that throws, after the backoff, up to maxDeliver, then gives up and goes on', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const failing = everyType()[0]!;
    const next = everyType()[4]!;
    await stream.publish(failing);
    const attempts: { delivery: Delivery; at: number }[] = [];
    const handled: string[] = [];
    const gaveUp: Delivery[] = [];
    await using _run = await recorder(stream, {
      maxDeliver: 3,
      backoffMs: [400, 800],
      handle: (event, delivery) => {
        if (event.id !== failing.eventId) return void handled.push(event.id);
        attempts.push({ delivery, at: performance.now() });
        throw new Error('projection database is down');
      },
      onGiveUp: (_event, _error, delivery) => void gaveUp.push(delivery),
    });

    await expect.poll(() => gaveUp.length, { timeout: 10_000 }).toBe(1);
    expect(attempts.map(({ delivery }) => delivery.deliveryCount)).toEqual([1, 2, 3]);
    expect(gaveUp[0]?.deliveryCount).toBe(3);
    // Timers fire a little early or late; the waits must be the backoff's, not immediate.
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(350);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(750);
    // One event in flight at a time: the next is handled only once the failing one is settled for good.
    await stream.publish(next);
    await expect.poll(() => handled).toEqual([next.eventId]);
    expect(attempts).toHaveLength(3);
  });

  it('replays from a time and from a sequence', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const [a, b, c] = everyType();
    await stream.publish(a!);
    // Apart in time, so that a start time can fall between A and B.
    await sleep(20);
    const seqB = await stream.publish(b!);
    await stream.publish(c!);
    const jsm = await stream.js.jetstreamManager();
    const timeOfB = new Date((await jsm.streams.getMessage(stream.name, { seq: seqB }))!.time);

    await using fromTime = await recorder(stream, { deliver: { startTime: timeOfB } });
    await using fromSequence = await recorder(stream, { deliver: { startSequence: seqB } });
    await expect.poll(() => fromTime.received.map(({ event }) => event.id)).toEqual([b!.eventId, c!.eventId]);
    await expect.poll(() => fromSequence.received.map(({ event }) => event.id)).toEqual([b!.eventId, c!.eventId]);
    expect(fromSequence.received[0]?.delivery.streamSequence).toBe(seqB);
  });

  it('hands an unknown ce-type over as unknown, with its bytes and headers, and goes on', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const [before, , , , after] = everyType();
    const future = { type: 'identity.v1.UserTeleported', subject: 'user.teleported', payload: new Uint8Array([10, 3, 1, 2, 3]), eventId: crypto.randomUUID() };
    await stream.publish(before!);
    await stream.publish(future);
    await stream.publish(after!);
    await using run = await recorder(stream);

    await expect.poll(() => types(run.received)).toEqual([before!.type, future.type, after!.type]);
    const unknown = run.received[1]!.event;
    expect(unknown).toMatchObject({ known: false, reason: 'unknown-type', type: 'identity.v1.UserTeleported', id: future.eventId, subject: `${stream.prefix}.user.teleported` });
    expect(!unknown.known && [...unknown.data]).toEqual([...future.payload]);
    expect(unknown.headers['ce-specversion']).toBe('1.0');
  });

  it('stops cleanly and a durable resumes after the last acknowledged event', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const [first, second, third] = everyType();
    const durable = `resume-${crypto.randomUUID().slice(0, 8)}`;
    await stream.publish(first!);
    await stream.publish(second!);
    const firstRun = await recorder(stream, { durable });
    await expect.poll(() => firstRun.received.length).toBe(2);
    await firstRun.consumer.stop();
    await expect(firstRun.consumer.finished).resolves.toBeUndefined();

    await stream.publish(third!);
    await using secondRun = await recorder(stream, { durable, deliver: 'all' });
    await expect.poll(() => secondRun.received.map(({ event }) => event.id)).toEqual([third!.eventId]);
  });

  it('keeps only the subjects asked for, also several (matched client-side on NATS 2.9)', async () => {
    await using stream = await openTestEventStream(NATS_URL);
    const published = everyType();
    for (const event of published) await stream.publish(event);
    await using run = await recorder(stream, { subjects: [`${stream.prefix}.user.registered`, `${stream.prefix}.session.*`] });
    await using single = await recorder(stream, { subjects: [`${stream.prefix}.user.deleted`] });

    await expect.poll(() => types(run.received)).toEqual(['identity.v1.UserRegistered', 'identity.v1.SessionRevoked']);
    await expect.poll(() => types(single.received)).toEqual(['identity.v1.UserDeleted']);
  });
});
