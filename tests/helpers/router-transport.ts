import { createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import { pino } from 'pino';
import { Health } from '../../src/gen/grpc/health/v1/health_pb.js';
import { IdentityService } from '../../src/gen/identity/v1/identity_pb.js';
import { createMetrics } from '../../src/infrastructure/observability/metrics.js';
import { deadlineInterceptor } from '../../src/transport/connect/interceptors/deadline.interceptor.js';
import { observeInterceptor } from '../../src/transport/connect/interceptors/observe.interceptor.js';
import { routes } from '../../src/transport/connect/routes.js';
import { FakeReadiness } from '../fakes/readiness.fake.js';
import { wireFakes } from '../fakes/wiring.js';

/**
 * The API's routes and interceptors as the server mounts them, over use cases wired to fakes,
 * served in memory: a generated client sees codes and error details exactly as over the wire,
 * with no socket, database or bcrypt.
 */
export function inMemoryApi(options: { requestTimeoutMs?: number } = {}) {
  const fakes = wireFakes();
  const readiness = new FakeReadiness();
  const transport = createRouterTransport(routes({ useCases: fakes.useCases, readiness }), {
    router: {
      interceptors: [observeInterceptor(pino({ level: 'silent' }), createMetrics()), deadlineInterceptor(options.requestTimeoutMs ?? 30_000)],
    },
  });
  const identity: Client<typeof IdentityService> = createClient(IdentityService, transport);
  const health: Client<typeof Health> = createClient(Health, transport);
  return { ...fakes, readiness, identity, health };
}
