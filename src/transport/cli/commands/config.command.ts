import { Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

export const configCommand = (deps: () => CliDeps, done: Done) =>
  new Command('config').description('print the effective configuration, secrets masked').action(() => {
    print(deps().describeConfig());
    done(ExitCode.Ok);
  });
