import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { provisionStream } from '../../src/infrastructure/nats/stream-provisioner.js';
import type { Scope } from './scope.js';

export interface BenchNats {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  /** Deletes the stream when `scope` closes (ignoring one that was never created). */
  deleteWithScope(stream: string, scope: Scope): void;
  /** Creates a stream exactly as the service provisions its own (file storage, same dedup window). */
  provision(stream: string, subjectPrefix: string, duplicateWindowSeconds: number): Promise<void>;
  messages(stream: string): Promise<number>;
}

/** The bench's own NATS connection: stream bookkeeping and timestamps, never load. */
export async function connectNats(url: string, scope: Scope): Promise<BenchNats> {
  const nc = await connect({ servers: url, name: 'identity-bench' });
  scope.defer('close NATS connection', () => nc.close());
  const jsm = await jetstreamManager(nc);
  return {
    nc,
    jsm,
    deleteWithScope(stream, streamScope) {
      streamScope.defer(`delete stream ${stream}`, async () => {
        await jsm.streams.delete(stream).catch((error: unknown) => {
          if (!/not found/i.test(String(error))) throw error;
        });
      });
    },
    provision: (stream, subjectPrefix, duplicateWindowSeconds) =>
      provisionStream(jsm, { name: stream, subjects: [`${subjectPrefix}.>`], duplicateWindowSeconds, replicas: 1, maxAgeSeconds: 0 }, pino({ level: 'silent' })),
    messages: async (stream) => (await jsm.streams.info(stream)).state.messages,
  };
}

/** When JetStream stored message `seq` of `stream`, in epoch milliseconds (sub-ms precision). */
export async function storedAtMs(jsm: JetStreamManager, stream: string, seq: number): Promise<number> {
  const message = await jsm.streams.getMessage(stream, { seq });
  if (message === null) throw new Error(`stream ${stream} has no message ${seq}`);
  return isoNanosToMs(message.timestamp);
}

/** "2026-11-20T10:00:00.123456789Z" -> epoch ms with the sub-millisecond digits kept. */
function isoNanosToMs(timestamp: string): number {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(timestamp);
  if (match === null) return Date.parse(timestamp);
  const fraction = Number(`0.${match[2] ?? '0'}`);
  return Date.parse(`${match[1]!}${match[3]!}`) + fraction * 1000;
}

/** Reads every message of a stream once with an ordered consumer: (header value, stored time). */
export async function readStoredTimes(nc: NatsConnection, stream: string, header: string, expected: number, timeoutMs: number): Promise<Map<string, number>> {
  const consumer = await jetstream(nc).consumers.get(stream);
  const times = new Map<string, number>();
  const messages = await consumer.consume();
  const timer = setTimeout(() => void messages.close(), timeoutMs);
  for await (const message of messages) {
    const id = message.headers?.get(header);
    if (id !== undefined && id !== '') times.set(id, Number(message.timestampNanos / 1000n) / 1000);
    if (times.size >= expected) break;
  }
  clearTimeout(timer);
  await messages.close();
  return times;
}
