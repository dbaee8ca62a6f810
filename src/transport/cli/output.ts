/** A command's result on stdout: strings as they are, anything else as indented JSON. */
export function print(value: unknown): void {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

/** A refusal on stderr, in the one-line form every command uses. */
export function complain(message: string): void {
  process.stderr.write(`identity: ${message}\n`);
}
