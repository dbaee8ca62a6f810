import { JetStreamApiCodes, JetStreamApiError, StorageType, type JetStreamManager, type StreamConfig, type StreamUpdateConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CodedError } from '../../domain/shared/coded-error.js';

export interface StreamSettings {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly duplicateWindowSeconds: number;
  /** NATS_STREAM_REPLICAS: 1 on a single server, 3 on a JetStream cluster. */
  readonly replicas: number;
  /** NATS_STREAM_MAX_AGE_SECONDS: 0 keeps messages for ever. */
  readonly maxAgeSeconds: number;
}

/** The stream cannot be had as configured (settings we cannot change in place, a refusal for good); start-up stops with this. */
export class StreamConflictError extends CodedError {
  readonly code = 'NATS.STREAM_CONFLICT';

  constructor(name: string, problem: string, exists = true) {
    super(`JetStream stream ${name} ${exists ? 'exists with incompatible settings' : 'cannot be created as configured'}: ${problem}`);
  }
}

/** Server answers to a create or update that retrying cannot change. */
const FINAL_CODES = new Set([
  10052, // duplicates window can not be larger than max age
  10074, // replicas > 1 not supported in non-clustered mode
]);
/** "No suitable peers for placement" is a 400 too, but a node that is down comes back: retry. */
const NO_SUITABLE_PEERS = 10005;

/**
 * Creates the stream, or brings an existing one up to what we need where that is safe:
 * adding our subjects, widening the duplicate window, raising the replica count (never
 * lowering it: an operator may have raised it by hand, and fewer copies is not ours to decide),
 * and setting the configured retention. Storage cannot change in place, so a memory stream
 * stops start-up with a clear message instead of losing events; so does a change the server
 * refuses for good (subjects another stream owns, replicas on a server without a cluster).
 */
export async function provisionStream(jsm: JetStreamManager, settings: StreamSettings, logger: Logger): Promise<void> {
  const duplicateWindow = nanos(settings.duplicateWindowSeconds * 1000);
  const maxAge = nanos(settings.maxAgeSeconds * 1000);
  const existing = await streamConfig(jsm, settings.name);
  if (existing === undefined) {
    await refusalIsFinal(settings.name, false, () =>
      jsm.streams.add({
        name: settings.name,
        subjects: [...settings.subjects],
        storage: StorageType.File,
        duplicate_window: duplicateWindow,
        num_replicas: settings.replicas,
        max_age: maxAge,
      }),
    );
    logger.info({ stream: settings.name, replicas: settings.replicas, maxAgeSeconds: settings.maxAgeSeconds }, 'JetStream stream created');
    return;
  }
  if (existing.storage !== StorageType.File) throw new StreamConflictError(settings.name, `storage is ${existing.storage}, not file`);
  const change = changesFor(existing, settings.subjects, duplicateWindow, settings.replicas, maxAge);
  if (existing.num_replicas > settings.replicas) {
    logger.info({ stream: settings.name, replicas: existing.num_replicas, configured: settings.replicas }, 'JetStream stream keeps its higher replica count');
  }
  if (Object.keys(change).length === 0) return;
  await refusalIsFinal(settings.name, true, () => jsm.streams.update(settings.name, change));
  logger.info({ stream: settings.name, change: describeChange(change) }, 'JetStream stream updated');
}

function changesFor(existing: StreamConfig, subjects: readonly string[], duplicateWindow: number, replicas: number, maxAge: number): Partial<StreamUpdateConfig> {
  const missing = subjects.filter((subject) => !existing.subjects.includes(subject));
  return {
    ...(missing.length > 0 && { subjects: [...existing.subjects, ...missing] }),
    ...((existing.duplicate_window ?? 0) < duplicateWindow && { duplicate_window: duplicateWindow }),
    ...(existing.num_replicas < replicas && { num_replicas: replicas }),
    ...((existing.max_age ?? 0) !== maxAge && { max_age: maxAge }),
  };
}

/** Durations in seconds, for a log line people read. */
function describeChange(change: Partial<StreamUpdateConfig>): Record<string, unknown> {
  const seconds = (value: number | undefined) => (value === undefined ? undefined : value / 1e9);
  return { ...change, duplicate_window: seconds(change.duplicate_window), max_age: seconds(change.max_age) };
}

async function refusalIsFinal<T>(name: string, exists: boolean, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (error instanceof JetStreamApiError && isFinal(error)) throw new StreamConflictError(name, error.message, exists);
    throw error;
  }
}

const isFinal = (error: JetStreamApiError) => (error.status === 400 && error.code !== NO_SUITABLE_PEERS) || FINAL_CODES.has(error.code);

async function streamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}
