#!/usr/bin/env node
/**
 * The `identity` command: checks the runtime, parses argv and runs one command. The wiring
 * lives in src/app (the composition root); the commands in src/transport/cli.
 */
import { pathToFileURL } from 'node:url';
import { cliDeps } from './app/cli-deps.js';
import { ConfigError, loadConfig } from './infrastructure/config/load-config.js';
import { ExitCode } from './transport/cli/exit-code.js';
import { complain } from './transport/cli/output.js';
import { buildProgram } from './transport/cli/program.js';

const MIN_NODE_MAJOR = 24;

/** The exit code an error calls for: 2 for what could not run as given, 1 for what failed. */
function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError) return ExitCode.Usage;
  const code = (error as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' ? code : ExitCode.Failure;
}

/**
 * Runs the command in `argv`. The environment is read when a command runs, not before, so
 * `--help` works whatever it holds; an invalid one exits 2 naming every bad variable.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    complain(`Node.js ${MIN_NODE_MAJOR} or newer is required, this is ${process.versions.node} (run it through npm, which uses the node package)`);
    process.exit(ExitCode.Failure);
  }
  // A finished command exits at once: a NATS client still trying to connect would keep it alive.
  const program = buildProgram(() => cliDeps(loadConfig()), (code) => process.exit(code));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    // Commander has already printed its own usage errors (they carry an exitCode).
    const commanderPrinted = typeof (error as { exitCode?: unknown }).exitCode === 'number';
    if (!commanderPrinted) complain(error instanceof Error ? error.message : String(error));
    process.exit(exitCodeOf(error));
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
