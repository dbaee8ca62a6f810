import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

export const outboxRetryDeadCommand = (deps: () => CliDeps, done: Done) =>
  new Command('retry-dead').description('put dead-lettered events back in line').action(async () =>
    done(await deps().outbox(async (outbox) => (print({ requeued: await outbox.retryDead() }), ExitCode.Ok))),
  );
