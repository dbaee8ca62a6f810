import closeWithGrace from 'close-with-grace';
import type { Config } from '../infrastructure/config/load-config.js';
import { startService } from './build-service.js';

/** Past the grace time, closing NATS or the pool may hang: give it this long, then exit 1. */
const SHUTDOWN_OVERRUN_MS = 5_000;
/** SIGTERM/SIGINT copies closer together than this are one request to stop, not two. */
export const DUPLICATE_SIGNAL_MS = 1_000;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * `identity serve`: starts the service and hands the end of the process to close-with-grace
 * (other signals, uncaught errors, the overrun deadline, exit codes). SIGTERM and SIGINT
 * pass through a handler of ours first, for one thing the library does not do: a copy of
 * the signal within a second (a supervisor and a wrapper both relaying it) is the same
 * request, where the library would treat it as a second signal and exit at once.
 */
export async function serve(config: Config): Promise<void> {
  const service = await startService(config);
  const { logger } = service;
  const { close } = closeWithGrace(
    {
      delay: config.SHUTDOWN_GRACE_SECONDS * 1000 + SHUTDOWN_OVERRUN_MS,
      logger: false,
      skip: [...STOP_SIGNALS],
      onSecondError: (error) => logger.fatal({ err: error }, 'error during shutdown: exiting now'),
      onSecondSignal: (signal) => logger.warn({ signal }, 'second signal: exiting now'),
      onTimeout: () => logger.error('shutdown overran the grace time: exiting now'),
    },
    async ({ signal, err }) => {
      // A bug that escaped every handler still ends the process, as Node would, but as a
      // log line an operator's tooling can read, and after the calls in flight are answered.
      if (err !== undefined) logger.fatal({ err }, 'uncaught error: shutting down');
      else if (signal !== undefined) logger.info({ signal }, 'signal received');
      try {
        await service.shutdown();
      } catch (error) {
        logger.error({ err: error }, 'shutdown failed');
        throw error;
      }
    },
  );
  let firstAt: number | undefined;
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      logger.info({ signal }, 'signal received');
      close();
    } else if (Date.now() - firstAt >= DUPLICATE_SIGNAL_MS) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
}
