import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

export const outboxStatsCommand = (deps: () => CliDeps, done: Done) =>
  new Command('stats').description('pending and dead-lettered events, and the oldest pending age').action(async () =>
    done(await deps().outbox(async (outbox) => (print(await outbox.stats()), ExitCode.Ok))),
  );
