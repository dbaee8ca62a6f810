import { JetStreamApiError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { errors } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { isTransportFailure } from '../../src/infrastructure/nats/publish-errors.js';

// What a publish meets while a stream elects a leader (measured on a 3-node 2.9 cluster with
// its leader killed): "no responders" (reported by js.publish as JetStreamNotEnabled), request
// timeouts, and 503s from the API. None of them says anything about the message.
describe('isTransportFailure', () => {
  const apiError = (code: number, err_code: number, description: string) => new JetStreamApiError({ code, err_code, description });

  it('counts a leader election as a transport failure', () => {
    expect(isTransportFailure(new errors.TimeoutError())).toBe(true);
    expect(isTransportFailure(new errors.RequestError('no responders', { cause: new errors.NoRespondersError('identity.user.registered') }))).toBe(true);
    expect(isTransportFailure(new jserrors.JetStreamNotEnabled('jetstream is not enabled'))).toBe(true);
    expect(isTransportFailure(apiError(503, 10008, 'JetStream system temporarily unavailable'))).toBe(true);
  });

  it("blames the message for the server's other refusals", () => {
    expect(isTransportFailure(apiError(400, 10060, 'expected stream does not match'))).toBe(false);
    expect(isTransportFailure(new Error('no subject is known for event type x'))).toBe(false);
  });
});
