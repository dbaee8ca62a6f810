import { Argument, Command } from 'commander';
import type { CliDeps, Done } from '../cli-deps.js';
import { ExitCode } from '../exit-code.js';
import { print } from '../output.js';

type Direction = 'up' | 'down' | 'status';

export const migrateCommand = (deps: () => CliDeps, done: Done) =>
  new Command('migrate')
    .description('apply (up), roll back the last batch of (down) or list (status) database migrations')
    .addArgument(new Argument('[direction]', 'up, down or status').choices(['up', 'down', 'status']).default('up'))
    .action(async (direction: Direction) =>
      done(
        await deps().migrations(async (migrations) => {
          if (direction === 'up') print({ applied: await migrations.up() });
          else if (direction === 'down') print({ reverted: await migrations.down() });
          else print(await migrations.status());
          return ExitCode.Ok;
        }),
      ),
    );
