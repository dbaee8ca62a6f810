import { createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import { pino } from 'pino';
import { Health } from '../../src/gen/grpc/health/v1/health_pb.js';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';
import { callInterceptors } from '../../src/transport/connect/interceptors/call-interceptors.js';
import { callObserver } from '../../src/transport/connect/interceptors/observe.interceptor.js';
import { routes } from '../../src/transport/connect/routes.js';
import { FakeReadiness } from '../fakes/readiness.fake.js';
import { FakeRpcMetrics } from '../fakes/rpc-metrics.fake.js';
import { wireFakes } from '../fakes/wiring.js';

/**
 * The API's routes and interceptors as src/app/wiring/api-handler.ts mounts them (the same
 * callInterceptors chain), over use cases wired to fakes and served in memory: a generated client sees
 * codes and error details exactly as over the wire, with no socket, database or bcrypt.
 */
export function inMemoryApi(options: { requestTimeoutMs?: number; healthWatchLifetimeMs?: number; maxHealthWatchers?: number } = {}) {
  const fakes = wireFakes();
  const readiness = new FakeReadiness(options.maxHealthWatchers);
  const rpcMetrics = new FakeRpcMetrics();
  const interceptors = callInterceptors({ observer: callObserver(pino({ level: 'silent' }), rpcMetrics), requestTimeoutMs: options.requestTimeoutMs ?? 30_000 });
  // ext_authz Check is mounted too (its own tests are in ext-authz.unit.spec.ts): a loaded key, no counting.
  const extAuthz = { keys: { ready: true }, metrics: { checked: () => undefined, refused: () => undefined }, realm: 'identity-service', stripAuthorization: false };
  const transport = createRouterTransport(routes({ useCases: fakes.useCases, readiness, extAuthz, healthWatchLifetimeMs: options.healthWatchLifetimeMs ?? 120_000 }).register, { router: { interceptors } });
  const identity: Client<typeof IdentityService> = createClient(IdentityService, transport);
  const health: Client<typeof Health> = createClient(Health, transport);
  return { ...fakes, readiness, rpcMetrics, identity, health };
}
