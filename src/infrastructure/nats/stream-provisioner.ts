import { JetStreamApiCodes, JetStreamApiError, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { CodedError } from '../../domain/shared/coded-error.js';

export interface StreamSettings {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly duplicateWindowSeconds: number;
}

/** The stream exists with settings we cannot change in place; start-up stops with this. */
export class StreamConflictError extends CodedError {
  readonly code = 'NATS.STREAM_CONFLICT';

  constructor(name: string, problem: string) {
    super(`JetStream stream ${name} exists with incompatible settings: ${problem}`);
  }
}

/**
 * Creates the stream, or brings an existing one up to what we need where that is safe
 * (adding our subjects, widening the duplicate window). Storage cannot change in place,
 * so a memory stream stops start-up with a clear message instead of losing events.
 */
export async function provisionStream(jsm: JetStreamManager, settings: StreamSettings, logger: Logger): Promise<void> {
  const duplicateWindow = nanos(settings.duplicateWindowSeconds * 1000);
  const existing = await streamConfig(jsm, settings.name);
  if (existing === undefined) {
    await jsm.streams.add({
      name: settings.name,
      subjects: [...settings.subjects],
      storage: StorageType.File,
      duplicate_window: duplicateWindow,
    });
    logger.info({ stream: settings.name }, 'JetStream stream created');
    return;
  }
  if (existing.storage !== StorageType.File) throw new StreamConflictError(settings.name, `storage is ${existing.storage}, not file`);
  const missing = settings.subjects.filter((subject) => !existing.subjects.includes(subject));
  const widen = (existing.duplicate_window ?? 0) < duplicateWindow;
  if (missing.length === 0 && !widen) return;
  await jsm.streams.update(settings.name, {
    subjects: [...existing.subjects, ...missing],
    duplicate_window: widen ? duplicateWindow : existing.duplicate_window,
  });
  logger.info({ stream: settings.name, addedSubjects: missing, widenedDuplicateWindow: widen }, 'JetStream stream updated');
}

async function streamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}
