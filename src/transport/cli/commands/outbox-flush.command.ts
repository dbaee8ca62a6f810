import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

/** Exits 1 when any event is left failing or dead: a script can tell a partial flush. */
export const outboxFlushCommand = (deps: () => CliDeps, done: Done) =>
  new Command('flush').description('publish every pending event now; exits 1 if any is left failing').action(async () =>
    done(
      await deps().outbox(async (outbox) => {
        const result = await outbox.flush();
        const stats = await outbox.stats();
        print({ ...result, ...stats });
        return result.failed > 0 || stats.dead > 0 ? ExitCode.Failure : ExitCode.Ok;
      }),
    ),
  );
