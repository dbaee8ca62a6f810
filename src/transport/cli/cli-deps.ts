import type { EventTail } from '../../application/ports/event-tail.port.js';
import type { OutboxOperations } from '../../application/ports/outbox-operations.port.js';
import type { SchemaMigrations } from '../../application/ports/schema-migrations.port.js';
import type { SigningKeyOperations } from '../../application/ports/signing-key-operations.port.js';
import type { ExitCode } from './exit-code.js';

/** Runs `work` with the operations open (a database connection), and closes them afterwards. */
type Scoped<T> = (work: (operations: T) => Promise<ExitCode>) => Promise<ExitCode>;

/** What the commands need, supplied by the composition root once the configuration is read. */
export interface CliDeps {
  /** Starts the service; resolves once it serves (the process then lives until a signal). */
  serve(): Promise<void>;
  readonly migrations: Scoped<SchemaMigrations>;
  readonly outbox: Scoped<OutboxOperations>;
  readonly keys: Scoped<SigningKeyOperations>;
  /** The event stream, over a NATS connection of its own (no database). */
  readonly events: Scoped<EventTail>;
  /** The effective configuration, secrets masked. */
  describeConfig(): Record<string, unknown>;
}

/** Ends a command with its exit code. */
export type Done = (code: ExitCode) => void;
