import { parseArgs } from 'node:util';

export interface BenchArgs {
  readonly quick: boolean;
  /** Scenario names to run; empty means all. */
  readonly only: readonly string[];
  /**
   * Services run from a tsc build with plain node, as the container image runs them (the
   * default); `--tsx` runs src/ through tsx instead (memory always runs compiled).
   */
  readonly compiled: boolean;
}

/** `--quick`, and `--only a --only b` or `--only a,b`; unknown names are refused with the list. */
export function parseBenchArgs(argv: readonly string[], known: readonly string[]): BenchArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      tsx: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [--quick] [--tsx] [--only <scenario>[,<scenario>...]]...\nscenarios: ${known.join(', ')}\n`);
    process.exit(0);
  }
  const only = values.only.flatMap((value) => value.split(',')).map((value) => value.trim()).filter(Boolean);
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return { quick: values.quick, compiled: !values.tsx, only };
}
