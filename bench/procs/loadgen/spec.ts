/** What the bench asks of the load generator process, and what it answers. Types only. */
import type { LatencySummary } from '../../lib/stats.js';

/** Users to log in as: `${emailPrefix}<n>@seed.example`, n in 1..count (a prefix nobody has gives unknown emails). */
export interface UserPool {
  readonly emailPrefix: string;
  readonly count: number;
  /** random: any user each call (index lookups all over the table); index: user n for call n. */
  readonly order: 'random' | 'index';
}

export type RequestSpec =
  /** Tokens are used in turn: with as many tokens as calls in flight, each call carries a different one. */
  | { readonly rpc: 'VerifyToken'; readonly tokens: readonly string[] }
  | { readonly rpc: 'Authenticate'; readonly users: UserPool; readonly password: string }
  /** Every call registers a new email under the prefix. */
  | { readonly rpc: 'RegisterUser'; readonly emailPrefix: string; readonly password: string };

type Load =
  /** `concurrency` calls always in flight: the rate the server sustains. */
  | { readonly kind: 'closed'; readonly concurrency: number }
  /** Calls started at a fixed rate whatever the answers do: latency at a known load. */
  | { readonly kind: 'open'; readonly ratePerSecond: number };

export interface Job {
  readonly label: string;
  /** host:port of an h2c server. */
  readonly target: string;
  readonly request: RequestSpec;
  readonly load: Load;
  /** The gRPC status a call must end with to count as a success; OK by default. */
  readonly expect?: string;
  /** HTTP/2 connections the job spreads its calls over; 1 by default. */
  readonly connections?: number;
  /** Return every success's latency too (JobResult.samples), to pool them over several runs. */
  readonly keepSamples?: boolean;
}

export interface RunSpec {
  /** Run concurrently, over the same window. */
  readonly jobs: readonly Job[];
  /** Calls finishing during the warm-up are not counted (JIT, connection set-up, pools filling). */
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface JobResult {
  readonly label: string;
  /** Calls that ended in the window with the expected status. */
  readonly ok: number;
  /** Calls that ended in the window with another status, by status name. */
  readonly errors: Readonly<Record<string, number>>;
  readonly firstError?: string;
  readonly seconds: number;
  /** ok / seconds. */
  readonly throughput: number;
  /** Of the calls with the expected status. */
  readonly latency: LatencySummary;
  /** Open load only: the worst delay between a call's planned and actual start (a client that fell behind). */
  readonly maxStartLagMs?: number;
  /** Job.keepSamples only: the latency of every call counted in `ok`, in ms. */
  readonly samples?: readonly number[];
}

export interface RunResult {
  readonly jobs: readonly JobResult[];
  /** Share of one core the load generator used: near 1.0 means the client, not the server, may be the limit. */
  readonly clientCpuShare: number;
}

export interface Step {
  readonly label: string;
  readonly target: string;
  readonly request: RequestSpec;
  readonly expect?: string;
}

/** One call at a time, going round the steps: each step sees the same machine conditions. */
export interface SequenceSpec {
  readonly rounds: number;
  readonly steps: readonly Step[];
  /** Start each round at the next step, so no step always runs first. Off when order matters (throttling). */
  readonly rotate: boolean;
  /** Rounds run first and not recorded. */
  readonly warmupRounds: number;
}

export interface StepResult {
  readonly label: string;
  readonly ok: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly firstError?: string;
  readonly latency: LatencySummary;
}

export interface SequenceResult {
  readonly steps: readonly StepResult[];
}
