import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { complain, print } from '../output.js';

/** A rotation while another is pending is refused (exit 1), never queued behind it. */
export const keysRotateCommand = (deps: () => CliDeps, done: Done) =>
  new Command('rotate').description('publish a new key now; it signs after KEY_PUBLISH_LEAD_SECONDS, when the current one retires').action(async () =>
    done(
      await deps().keys(async (keys) => {
        const outcome = await keys.rotate(new Date());
        if ('refused' in outcome) {
          complain(outcome.refused);
          return ExitCode.Failure;
        }
        const { kid, alg, activatesAt } = outcome.rotated;
        print({ kid, alg, state: 'pending', activatesAt });
        return ExitCode.Ok;
      }),
    ),
  );
