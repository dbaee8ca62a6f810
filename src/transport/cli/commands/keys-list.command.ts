import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

export const keysListCommand = (deps: () => CliDeps, done: Done) =>
  new Command('list').description('signing keys with their states and times').action(async () =>
    done(await deps().keys(async (keys) => (print(await keys.list(new Date())), ExitCode.Ok))),
  );
