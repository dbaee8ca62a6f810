import type { RunResult, RunSpec, SequenceResult, SequenceSpec } from '../procs/loadgen/spec.js';
import { startChild, type ChildHandle } from './child.js';
import type { Scope } from './scope.js';

export type * from '../procs/loadgen/spec.js';

export interface LoadGenerator {
  run(spec: RunSpec): Promise<RunResult>;
  sequence(spec: SequenceSpec): Promise<SequenceResult>;
}

const ENTRY = new URL('../procs/loadgen/main.ts', import.meta.url);

/**
 * The load generator process (bench/procs/loadgen/main.ts), shared by the scenarios of a run
 * so it starts once; if it dies, the next scenario gets a new one instead of failing too.
 */
export async function startLoadGenerator(scope: Scope): Promise<LoadGenerator> {
  let child: ChildHandle = await startChild(ENTRY, scope);
  const live = async () => {
    if (!child.alive()) child = await startChild(ENTRY, scope);
    return child;
  };
  return {
    run: async (spec) => (await live()).call<RunResult>('run', spec),
    sequence: async (spec) => (await live()).call<SequenceResult>('sequence', spec),
  };
}
