import { Command, CommanderError } from 'commander';
import type { CliDeps, Done } from './cli-deps.js';
import { configCommand } from './commands/config.command.js';
import { eventsTailCommand } from './commands/events-tail.command.js';
import { keysListCommand } from './commands/keys-list.command.js';
import { keysRotateCommand } from './commands/keys-rotate.command.js';
import { migrateCommand } from './commands/migrate.command.js';
import { outboxFlushCommand } from './commands/outbox-flush.command.js';
import { outboxRetryDeadCommand } from './commands/outbox-retry-dead.command.js';
import { outboxStatsCommand } from './commands/outbox-stats.command.js';
import { serveCommand } from './commands/serve.command.js';
import { ExitCode } from './exit-code.js';

/**
 * The `identity` command line. `depsFor` runs only when a command does, so help and usage
 * errors need no configuration; a finished command reports its exit code through `done`.
 */
export function buildProgram(depsFor: () => CliDeps, done: Done): Command {
  let built: CliDeps | undefined;
  const deps = () => (built ??= depsFor());
  const program = new Command('identity')
    .description('Identity service: RegisterUser, Authenticate and VerifyToken over gRPC/Connect, with an outbox to NATS JetStream.')
    .addHelpText('after', '\nExit codes: 0 success, 1 the command failed, 2 bad usage or invalid configuration.')
    .exitOverride((error: CommanderError) => {
      // --help and --version are not errors; everything commander refuses is a usage error.
      throw error.exitCode === 0 ? error : new CommanderError(ExitCode.Usage, error.code, error.message);
    });

  program.addCommand(serveCommand(deps), { isDefault: true });
  program.addCommand(migrateCommand(deps, done));
  program
    .command('outbox')
    .description('inspect and drive the event outbox')
    .addCommand(outboxFlushCommand(deps, done))
    .addCommand(outboxStatsCommand(deps, done))
    .addCommand(outboxRetryDeadCommand(deps, done));
  program
    .command('keys')
    .description('manage token signing keys')
    .addCommand(keysListCommand(deps, done))
    .addCommand(keysRotateCommand(deps, done));
  program
    .command('events')
    .description('read the event stream')
    .addCommand(eventsTailCommand(deps, done));
  program.addCommand(configCommand(deps, done));
  inheritSettings(program);
  return program;
}

/** Commands built on their own (addCommand) do not inherit the exit override as `.command()` children do. */
function inheritSettings(parent: Command): void {
  for (const child of parent.commands) {
    child.copyInheritedSettings(parent);
    inheritSettings(child);
  }
}
