import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';

/** Where a new durable starts reading: only what arrives from now on, everything kept, or a point in the past. */
export type Deliver = 'new' | 'all' | { readonly startTime: Date } | { readonly startSequence: number };

export interface RedeliveryPolicy {
  /** Deliveries of one message at most, the first included. */
  readonly maxDeliver: number;
  /** Waits before the 2nd, 3rd, … delivery; the last one repeats. */
  readonly backoffMs: readonly number[];
}

const nanos = (ms: number) => Math.round(ms * 1_000_000);

function startAt(deliver: Deliver): Partial<ConsumerConfig> {
  if (deliver === 'new') return { deliver_policy: DeliverPolicy.New };
  if (deliver === 'all') return { deliver_policy: DeliverPolicy.All };
  if ('startTime' in deliver) return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: deliver.startTime.toISOString() };
  if (!Number.isSafeInteger(deliver.startSequence) || deliver.startSequence < 1) throw new RangeError('startSequence must be a stream sequence (1 or more)');
  return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: deliver.startSequence };
}

/**
 * The durable's configuration. `backoff` is the server's own schedule: it redelivers a
 * message nobody answered for (a subscriber that died mid-handler) after backoff[n-1]; the
 * server wants fewer entries than max_deliver (nats-server 2.9 checks it). A single filter
 * subject goes to the server; several are matched here (filter_subjects needs 2.10).
 */
export function consumerConfig(durable: string, subjects: readonly string[], deliver: Deliver, policy: RedeliveryPolicy, maxAckPending: number): Partial<ConsumerConfig> {
  if (policy.maxDeliver < 1) throw new RangeError('maxDeliver must be 1 or more');
  if (policy.backoffMs.length === 0) throw new RangeError('backoffMs needs at least one delay');
  return {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ...startAt(deliver),
    ...(subjects.length === 1 && { filter_subject: subjects[0] }),
    max_deliver: policy.maxDeliver,
    ...(policy.maxDeliver > 1 && { backoff: policy.backoffMs.slice(0, policy.maxDeliver - 1).map(nanos) }),
    ack_wait: nanos(policy.backoffMs[0] ?? 30_000),
    max_ack_pending: maxAckPending,
  };
}

/** The wait before delivery `deliveryCount + 1`. */
export const retryDelayMs = (policy: RedeliveryPolicy, deliveryCount: number): number =>
  policy.backoffMs[Math.min(deliveryCount, policy.backoffMs.length) - 1] ?? 0;
