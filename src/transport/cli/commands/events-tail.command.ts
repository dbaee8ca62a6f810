import { Command, InvalidArgumentError, Option } from 'commander';
import type { TailRequest } from '../../../application/ports/event-tail.port.js';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function rfc3339(value: string): Date {
  const time = new Date(value);
  if (!RFC3339.test(value) || Number.isNaN(time.getTime())) throw new InvalidArgumentError('expected an RFC 3339 time, e.g. 2026-12-06T04:00:00Z');
  return time;
}

function streamSequence(value: string): number {
  const sequence = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(sequence) || sequence < 1) throw new InvalidArgumentError('expected a stream sequence, 1 or more');
  return sequence;
}

function describe(request: TailRequest): string {
  const subject = request.subject ?? 'every subject';
  if (request.fromSequence !== undefined) return `${subject} from stream sequence ${request.fromSequence}`;
  if (request.since !== undefined) return `${subject} since ${request.since.toISOString()}`;
  return `${subject}, new events only`;
}

interface TailOptions {
  readonly subject?: string;
  readonly since?: Date;
  readonly fromSequence?: number;
}

/**
 * `identity events tail`: one JSON line per event on stdout until Ctrl-C (or SIGTERM), which
 * ends it with exit code 0. Events carry no secrets, and nothing else is printed there.
 */
export const eventsTailCommand = (deps: () => CliDeps, done: Done) =>
  new Command('tail')
    .description('print the stream\'s events as JSON lines, decoded; only new ones unless --since or --from-sequence')
    .option('--subject <subject>', 'only this subject (NATS wildcards * and > allowed)')
    .addOption(new Option('--since <time>', 'from this RFC 3339 time on').argParser(rfc3339).conflicts('fromSequence'))
    .addOption(new Option('--from-sequence <n>', 'from this stream sequence on').argParser(streamSequence))
    .action(async (options: TailOptions) => {
      const request: TailRequest = { ...options };
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      try {
        done(
          await deps().events(async (events) => {
            await events.follow(
              request,
              {
                // On stderr, so that stdout holds nothing but events.
                ready: () => process.stderr.write(`identity: following ${describe(request)}; Ctrl-C to stop\n`),
                event: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
              },
              stop.signal,
            );
            return ExitCode.Ok;
          }),
        );
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    });
