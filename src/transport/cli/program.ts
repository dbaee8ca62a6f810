import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

/** Exit codes of the `identity` command, documented in the README. */
export const ExitCode = {
  Ok: 0,
  /** The command ran and failed: a dependency is down, a flush left events failing, a rotation is pending. */
  Failure: 1,
  /** The command could not run as given: unknown command or option, invalid configuration. */
  Usage: 2,
} as const;

/** What each command does; the composition root supplies them, already wired. */
export interface CliHandlers {
  serve(): Promise<void>;
  migrate(direction: 'up' | 'down' | 'status'): Promise<void>;
  outboxFlush(): Promise<number>;
  outboxStats(): Promise<void>;
  outboxRetryDead(): Promise<void>;
  keysList(): Promise<void>;
  keysRotate(): Promise<number>;
  config(): Promise<void>;
  seed(users: number, batchSize: number): Promise<void>;
}

const positiveInt = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) throw new InvalidArgumentError('must be a positive integer');
  return parsed;
};

/** The `identity` command line; a command's promise resolves to the process exit code. */
export function buildProgram(handlersFor: () => CliHandlers, setExitCode: (code: number) => void): Command {
  // Built only when a command runs: help and usage errors need no configuration.
  let built: CliHandlers | undefined;
  const handlers = () => (built ??= handlersFor());
  const done = (code = ExitCode.Ok as number) => setExitCode(code);
  const program = new Command('identity')
    .description('Identity service: RegisterUser, Authenticate and VerifyToken over gRPC/Connect, with an outbox to NATS JetStream.')
    .addHelpText('after', '\nExit codes: 0 success, 1 the command failed, 2 bad usage or invalid configuration.')
    .exitOverride((error: CommanderError) => {
      // --help and --version are not errors; everything commander refuses is a usage error.
      throw error.exitCode === 0 ? error : new CommanderError(ExitCode.Usage, error.code, error.message);
    });

  program.command('serve', { isDefault: true }).description('serve the API and admin ports, and run the outbox relay').action(async () => {
    await handlers().serve();
  });

  program
    .command('migrate')
    .description('apply (up), roll back the last batch of (down) or list (status) database migrations')
    .addArgument(new Command().createArgument('[direction]', 'up, down or status').choices(['up', 'down', 'status']).default('up'))
    .action(async (direction: 'up' | 'down' | 'status') => done(void (await handlers().migrate(direction))));

  const outbox = program.command('outbox').description('inspect and drive the event outbox');
  outbox
    .command('flush')
    .description('publish every pending event now; exits 1 if any is left failing')
    .action(async () => done(await handlers().outboxFlush()));
  outbox.command('stats').description('pending and dead-lettered events, and the oldest pending age').action(async () => done(void (await handlers().outboxStats())));
  outbox.command('retry-dead').description('put dead-lettered events back in line').action(async () => done(void (await handlers().outboxRetryDead())));

  const keys = program.command('keys').description('manage token signing keys');
  keys.command('list').description('signing keys with their states and times').action(async () => done(void (await handlers().keysList())));
  keys
    .command('rotate')
    .description('publish a new key now; it signs after KEY_PUBLISH_LEAD_SECONDS, when the current one retires')
    .action(async () => done(await handlers().keysRotate()));

  program.command('config').description('print the effective configuration, secrets masked').action(async () => done(void (await handlers().config())));

  const dev = program.command('dev').description('development and benchmarking helpers');
  dev
    .command('seed')
    .description('insert many users fast (one precomputed hash, batched inserts); not for production')
    .addOption(new Option('--users <n>', 'how many users').argParser(positiveInt).makeOptionMandatory())
    .addOption(new Option('--batch <n>', 'rows per insert').argParser(positiveInt).default(5_000))
    .action(async (options: { users: number; batch: number }) => done(void (await handlers().seed(options.users, options.batch))));

  return program;
}
