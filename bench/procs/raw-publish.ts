/**
 * Baseline for the relay: the same events (the service's codec, same headers) published to
 * JetStream with msgID and the same number of publishes in flight, straight from memory:
 * no database, no claims, no marking. What NATS itself takes on this machine.
 */
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { serveParent } from '../lib/child-server.js';
import { nowMs } from '../lib/clock.js';
import { makeEvents } from '../lib/events.js';

export interface RawPublishParams {
  readonly natsUrl: string;
  readonly stream: string;
  readonly subject: string;
  readonly count: number;
  readonly inFlight: number;
  readonly eventSource: string;
}

serveParent({
  async run({ natsUrl, stream, subject, count, inFlight, eventSource }: RawPublishParams) {
    const events = makeEvents(count, eventSource);
    const nc = await connect({ servers: natsUrl, name: 'identity-bench-raw-publish' });
    try {
      const js = jetstream(nc);
      let next = 0;
      let duplicates = 0;
      const started = nowMs();
      // `inFlight` publishers pulling from one queue: a sliding window of outstanding PubAcks.
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          for (let i = next++; i < events.length; i = next++) {
            const event = events[i]!;
            const hdrs = headers();
            for (const [name, value] of Object.entries(event.headers)) hdrs.set(name, value);
            const ack = await js.publish(subject, event.payload, { msgID: event.eventId, headers: hdrs, expect: { streamName: stream } });
            if (ack.duplicate) duplicates++;
          }
        }),
      );
      return { published: events.length, duplicates, seconds: (nowMs() - started) / 1000 };
    } finally {
      await nc.close();
    }
  },
});
