import type { LoadGenerator } from './loadgen.js';
import type { BenchNats } from './nats.js';
import type { Scope } from './scope.js';

/** What every scenario gets: its settings, a place for cleanups, progress output, shared clients. */
export interface BenchContext {
  readonly scenario: string;
  /** Short durations and small data, for a smoke run. */
  readonly quick: boolean;
  readonly adminDatabaseUrl: string;
  readonly natsUrl: string;
  /** The service's default bcrypt cost (12); a scenario may say otherwise. */
  readonly bcryptCost: number;
  /** What the service uses by default: one core fewer than the machine, at least one. */
  readonly hashWorkers: number;
  readonly cores: number;
  /** Closed when the scenario ends, even when it throws. */
  readonly scope: Scope;
  readonly nats: BenchNats;
  /** The load generator process, shared by all scenarios (one start-up per run). */
  readonly loadgen: LoadGenerator;
  /** True with --compiled: services run from a tsc build rather than through tsx. */
  readonly compiled: boolean;
  /** The path of the compiled service's main.js, built once per run on first use. */
  compiledService(): Promise<string>;
  /** A progress line on stderr. */
  log(message: string): void;
}

/** Full-run and quick-run values of a scenario's knobs. */
export const pick = <T>(ctx: Pick<BenchContext, 'quick'>, values: { readonly full: T; readonly quick: T }): T => (ctx.quick ? values.quick : values.full);
