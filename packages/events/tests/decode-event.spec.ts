import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { consumerConfig, retryDelayMs } from '../src/consumer-config.js';
import { decodeEvent, EVENT_TYPES } from '../src/index.js';
import { subjectMatches } from '../src/subject-match.js';

const message = (type: string, data: Uint8Array) => {
  const hdrs = headers();
  hdrs.set('Nats-Msg-Id', 'e-1');
  hdrs.set('ce-type', type);
  hdrs.set('ce-time', 'not a time');
  return { subject: 'identity.user.registered', data, headers: hdrs };
};

describe('decodeEvent', () => {
  it('reports bytes that do not parse as their type as malformed, keeping them', () => {
    const decoded = decodeEvent(message('identity.v1.UserRegistered', new Uint8Array([0xff, 0xff, 0xff])));
    expect(decoded).toMatchObject({ known: false, reason: 'malformed', type: 'identity.v1.UserRegistered', id: 'e-1', time: undefined });
    expect(!decoded.known && decoded.error).toBeTruthy();
  });

  it('does not take an Object.prototype name for an event type', () => {
    expect(decodeEvent(message('constructor', new Uint8Array())).known).toBe(false);
  });

  it('keys each type by its protobuf message name', () => {
    for (const [type, { schema }] of Object.entries(EVENT_TYPES)) expect(schema.typeName).toBe(type);
  });
});

describe('subjectMatches', () => {
  it('follows NATS wildcards', () => {
    expect(subjectMatches('identity.>', 'identity.user.registered')).toBe(true);
    expect(subjectMatches('identity.>', 'identity')).toBe(false);
    expect(subjectMatches('identity.user.*', 'identity.user.registered')).toBe(true);
    expect(subjectMatches('identity.user.*', 'identity.session.revoked')).toBe(false);
    expect(subjectMatches('identity.user.*', 'identity.user.a.b')).toBe(false);
    expect(subjectMatches('identity.user.registered', 'identity.user.registered')).toBe(true);
  });
});

describe('consumerConfig', () => {
  it('gives the server fewer backoff entries than max_deliver, as nats-server requires', () => {
    const config = consumerConfig('d', [], 'all', { maxDeliver: 3, backoffMs: [1_000, 2_000, 3_000, 4_000] }, 1);
    expect(config.backoff).toEqual([1e9, 2e9]);
    expect(config.filter_subject).toBeUndefined();
    expect(retryDelayMs({ maxDeliver: 9, backoffMs: [10, 20] }, 1)).toBe(10);
    expect(retryDelayMs({ maxDeliver: 9, backoffMs: [10, 20] }, 7)).toBe(20);
  });

  it('refuses a start sequence below 1', () => {
    expect(() => consumerConfig('d', [], { startSequence: 0 }, { maxDeliver: 1, backoffMs: [1] }, 1)).toThrow(RangeError);
  });
});
