import type { BenchContext } from '../lib/context.js';
import type { ResultRow } from '../lib/report.js';
import { authenticate } from './authenticate.js';
import { extAuthz } from './ext-authz.js';
import { hostile } from './hostile.js';
import { listUsers } from './list-users.js';
import { memory } from './memory.js';
import { mixed } from './mixed.js';
import { register } from './register.js';
import { replicas } from './replicas.js';
import { relayLatency } from './relay-latency.js';
import { relayThroughput } from './relay-throughput.js';
import { scale } from './scale.js';
import { sessions } from './sessions.js';
import { timing } from './timing.js';
import { verifyCached } from './verify-cached.js';
import { verifyUncached } from './verify-uncached.js';

export interface Scenario {
  readonly name: string;
  readonly run: (ctx: BenchContext) => Promise<ResultRow[]>;
}

/** Every scenario, in the order a full run takes them. */
export const scenarios: readonly Scenario[] = [
  { name: 'register', run: register },
  { name: 'authenticate', run: authenticate },
  { name: 'verify-uncached', run: verifyUncached },
  { name: 'verify-cached', run: verifyCached },
  { name: 'ext-authz', run: extAuthz },
  { name: 'mixed', run: mixed },
  { name: 'timing', run: timing },
  { name: 'scale', run: scale },
  { name: 'replicas', run: replicas },
  { name: 'memory', run: memory },
  { name: 'relay-throughput', run: relayThroughput },
  { name: 'relay-latency', run: relayLatency },
  { name: 'hostile', run: hostile },
  { name: 'sessions', run: sessions },
  { name: 'list-users', run: listUsers },
];
