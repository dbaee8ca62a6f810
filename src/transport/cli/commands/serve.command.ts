import { Command } from 'commander';
import type { CliDeps } from '../cli-deps.js';

/** `identity serve` (the default): runs until a signal; the process exits from its shutdown. */
export const serveCommand = (deps: () => CliDeps) =>
  new Command('serve').description('serve the API and admin ports, and run the outbox relay').action(() => deps().serve());
