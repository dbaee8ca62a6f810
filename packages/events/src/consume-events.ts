import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { consumerConfig, retryDelayMs, type Deliver, type RedeliveryPolicy } from './consumer-config.js';
import { decodeEvent, type DecodedEvent } from './decode-event.js';
import { subjectMatches } from './subject-match.js';

export interface Delivery {
  /** The message's sequence in the stream. */
  readonly streamSequence: number;
  /** 1 on the first delivery, more on redeliveries. */
  readonly deliveryCount: number;
}

export interface ConsumeEventsOptions {
  readonly jetstream: JetStreamClient;
  /** The durable consumer's name: it keeps its position across restarts. */
  readonly durable: string;
  /** NATS subjects, wildcards allowed. Default: every event of the stream. */
  readonly subjects?: readonly string[];
  /** Where a durable starts when it is created; an existing durable keeps its position. Default `new`. */
  readonly deliver?: Deliver;
  /**
   * Called once per delivery, in stream order. Resolving acknowledges the event; throwing
   * asks for it again after the backoff. Must be idempotent: an event can come twice
   * (the id to remember is `event.id`, the `Nats-Msg-Id`). Unknown event types arrive too,
   * with `known: false` and their raw bytes.
   */
  readonly handle: (event: DecodedEvent, delivery: Delivery) => Promise<void> | void;
  /** Called when a handler has failed on the last allowed delivery; the event is then terminated (not redelivered). */
  readonly onGiveUp?: (event: DecodedEvent, error: unknown, delivery: Delivery) => void;
  /** Default `IDENTITY`. */
  readonly stream?: string;
  /** Deliveries of one event at most. Default 5. */
  readonly maxDeliver?: number;
  /** Waits before the 2nd, 3rd, … delivery (ms); the last repeats. Default 1 s, 5 s, 30 s, 2 min. */
  readonly backoffMs?: readonly number[];
  /**
   * Events handed out before the earlier ones are acknowledged. Default 1: a failing event
   * holds back the ones after it, so a user's events are handled in order even across
   * redeliveries. More is faster, and then the handler must cope with reordering.
   */
  readonly maxAckPending?: number;
}

export interface EventConsumer extends AsyncDisposable {
  /** Stops fetching, lets the handler in progress finish (and ack), and resolves. */
  stop(): Promise<void>;
  /** Settles when consuming ends: after stop(), or with the error that ended it. */
  readonly finished: Promise<void>;
}

const DEFAULT_BACKOFF_MS = [1_000, 5_000, 30_000, 120_000];

/**
 * A durable pull consumer of the identity events with explicit acks: each event is handed
 * to `handle` decoded, acknowledged when it resolves, redelivered with backoff when it
 * throws, and given up after `maxDeliver` deliveries (reported through `onGiveUp`).
 */
export async function consumeEvents(options: ConsumeEventsOptions): Promise<EventConsumer> {
  const stream = options.stream ?? 'IDENTITY';
  const subjects = options.subjects ?? [];
  const policy: RedeliveryPolicy = { maxDeliver: options.maxDeliver ?? 5, backoffMs: options.backoffMs ?? DEFAULT_BACKOFF_MS };
  const config = consumerConfig(options.durable, subjects, options.deliver ?? 'new', policy, options.maxAckPending ?? 1);
  await ensureDurable(options.jetstream, stream, options.durable, config);

  const consumer = await options.jetstream.consumers.get(stream, options.durable);
  const messages = await consumer.consume({ max_messages: 64 });
  // Keeps a message claimed while a slow handler runs, so the ack wait does not redeliver it.
  const heartbeatMs = Math.max(100, Math.min(...policy.backoffMs) / 2);
  const wanted = (subject: string) => subjects.length <= 1 || subjects.some((filter) => subjectMatches(filter, subject));

  const finished = (async () => {
    for await (const message of messages) {
      if (!wanted(message.subject)) message.ack();
      else await deliver(message, options, policy, heartbeatMs);
    }
  })();
  const stop = async () => {
    await messages.close();
    await finished;
  };
  return { stop, finished, [Symbol.asyncDispose]: stop };
}

async function deliver(message: JsMsg, options: ConsumeEventsOptions, policy: RedeliveryPolicy, heartbeatMs: number): Promise<void> {
  const event = decodeEvent(message);
  const delivery: Delivery = { streamSequence: message.seq, deliveryCount: message.info.deliveryCount };
  const heartbeat = setInterval(() => message.working(), heartbeatMs);
  try {
    await options.handle(event, delivery);
    // Confirmed, so that the next event is fetched only once this one is settled. An ack that
    // fails (connection lost) means a redelivery, which idempotent handlers absorb.
    await message.ackAck().catch(() => undefined);
  } catch (error) {
    if (delivery.deliveryCount >= policy.maxDeliver) {
      message.term(`handler failed on delivery ${delivery.deliveryCount} of ${policy.maxDeliver}`);
      options.onGiveUp?.(event, error, delivery);
    } else {
      message.nak(retryDelayMs(policy, delivery.deliveryCount));
    }
  } finally {
    clearInterval(heartbeat);
  }
}

/** Creates the durable, or leaves an existing one as it is (with its position). */
async function ensureDurable(js: JetStreamClient, stream: string, durable: string, config: ReturnType<typeof consumerConfig>): Promise<void> {
  const jsm = await js.jetstreamManager();
  try {
    await jsm.consumers.info(stream, durable);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound)) throw error;
    await jsm.consumers.add(stream, config);
  }
}
