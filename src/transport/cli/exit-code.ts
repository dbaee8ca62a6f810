/** Exit codes of the `identity` command, documented in the README. */
export const ExitCode = {
  Ok: 0,
  /** The command ran and failed: a dependency is down, a flush left events failing, a rotation is pending. */
  Failure: 1,
  /** The command could not run as given: unknown command or option, invalid configuration. */
  Usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
