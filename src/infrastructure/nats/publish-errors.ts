import { JetStreamApiError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { errors } from '@nats-io/transport-node';

/**
 * Whether a failed publish says something about NATS (down, reconnecting, no stream
 * listening, timed out) rather than about the message. Transport failures are retried
 * without counting against the row, so an outage never dead-letters events.
 */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof errors.TimeoutError) return true;
  if (error instanceof errors.NoRespondersError) return true;
  if (error instanceof errors.ClosedConnectionError) return true;
  if (error instanceof errors.DrainingConnectionError) return true;
  if (error instanceof errors.ConnectionError) return true;
  if (error instanceof errors.RequestError) return true;
  // js.publish reports "no responders" (no stream on the subject, JetStream not up yet) as this.
  if (error instanceof jserrors.JetStreamNotEnabled) return true;
  // 503: JetStream temporarily unavailable (no quorum, server starting).
  return error instanceof JetStreamApiError && error.status === 503;
}
