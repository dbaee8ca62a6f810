import { on } from 'node:events';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type Health,
  type HealthCheckRequest,
} from '../../gen/grpc/health/v1/health_pb.js';
import { IdentityService } from '../../gen/identity/v1/identity_pb.js';
import type { Readiness } from '../../infrastructure/observability/readiness.js';

/** "" is the server as a whole; the other names are the services it serves. */
const SERVICES = ['', IdentityService.typeName];

const statusOf = (ready: boolean) => (ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);

/** grpc.health.v1.Health, answered from the same readiness rule as /readyz. */
export class HealthServiceHandler implements ServiceImpl<typeof Health> {
  constructor(private readonly readiness: Readiness) {}

  async check(req: HealthCheckRequest) {
    if (!SERVICES.includes(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
    return { status: await this.currentStatus() };
  }

  async list() {
    const status = await this.currentStatus();
    return { statuses: Object.fromEntries(SERVICES.map((service) => [service, { status }])) };
  }

  /**
   * Sends the status now and on every change; ends when the server drains, so shutdown is not
   * held up. An unknown service gets SERVICE_UNKNOWN and the call stays open, as health.proto asks.
   */
  async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
    const known = SERVICES.includes(req.service);
    // Listening starts before the first answer, so a change while it is being sent is not missed.
    const changes = on(this.readiness, 'change', { signal: ctx.signal }) as AsyncIterableIterator<[boolean]>;
    try {
      let last = known ? await this.currentStatus() : ServingStatus.SERVICE_UNKNOWN;
      yield { status: last };
      if (this.readiness.isDraining) {
        if (known && last !== ServingStatus.NOT_SERVING) yield { status: ServingStatus.NOT_SERVING };
        return;
      }
      for await (const [ready] of changes) {
        const status = known ? statusOf(ready) : ServingStatus.SERVICE_UNKNOWN;
        if (status !== last) yield { status };
        last = status;
        if (this.readiness.isDraining) return;
      }
    } catch (error) {
      // The caller went away or the server is closing: the stream simply ends.
      if (!ctx.signal.aborted) throw error;
    } finally {
      await changes.return?.();
    }
  }

  private async currentStatus(): Promise<ServingStatus> {
    if (this.readiness.isDraining) return ServingStatus.NOT_SERVING;
    return statusOf((await this.readiness.check()).ready);
  }
}
