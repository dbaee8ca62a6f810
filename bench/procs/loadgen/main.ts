/**
 * The load generator: a separate process, so the client's CPU never shares an event loop
 * with the bench's bookkeeping, and it talks to the service only over 127.0.0.1.
 */
import { serveParent } from '../../lib/child-server.js';
import { run, sequence } from './runners.js';
import type { RunSpec, SequenceSpec } from './spec.js';

serveParent({
  run: (spec: RunSpec) => run(spec),
  sequence: (spec: SequenceSpec) => sequence(spec),
});
