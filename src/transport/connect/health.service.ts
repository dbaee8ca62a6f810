import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type Health,
  type HealthCheckRequest,
} from '../../gen/grpc/health/v1/health_pb.js';
import { IdentityService } from '../../gen/identity/v1/identity_pb.js';

/** "" is the server as a whole; the other names are the services it serves. */
const SERVICES = ['', IdentityService.typeName];

const statusOf = (ready: boolean) => (ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);

export interface HealthServiceOptions {
  /**
   * How long one Watch stream lives before it ends with OK (clients watch again). Each open
   * Watch holds a stream and a subscription; a lifetime bounds how long a flood holds them.
   */
  readonly watchLifetimeMs: number;
}

/** grpc.health.v1.Health, answered from the same readiness rule as /readyz. */
export class HealthServiceHandler implements ServiceImpl<typeof Health> {
  constructor(
    private readonly readiness: ReadinessPort,
    private readonly options: HealthServiceOptions,
  ) {}

  async check(req: HealthCheckRequest) {
    if (!SERVICES.includes(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
    return { status: await this.currentStatus() };
  }

  async list() {
    const status = await this.currentStatus();
    return { statuses: Object.fromEntries(SERVICES.map((service) => [service, { status }])) };
  }

  /**
   * Sends the status now and on every change; ends with OK when the server drains (so shutdown
   * is not held up) or the stream's lifetime is over. An unknown service gets SERVICE_UNKNOWN
   * and the call stays open, as health.proto asks. Past the cap on watchers: RESOURCE_EXHAUSTED.
   */
  async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
    const known = SERVICES.includes(req.service);
    const changes: boolean[] = [];
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    // Subscribed before the first answer, so a change while it is being sent is not missed.
    const unsubscribe = this.readiness.subscribe((ready) => {
      changes.push(ready);
      notify();
    });
    if (unsubscribe === undefined) throw new ConnectError('too many health watchers, try again later', Code.ResourceExhausted);
    let expired = false;
    const lifetime = setTimeout(() => {
      expired = true;
      notify();
    }, this.options.watchLifetimeMs);
    ctx.signal.addEventListener('abort', notify, { once: true });
    try {
      let last = known ? await this.currentStatus() : ServingStatus.SERVICE_UNKNOWN;
      yield { status: last };
      while (!this.readiness.isDraining && !expired && !ctx.signal.aborted) {
        const ready = changes.shift();
        if (ready === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const status = known ? statusOf(ready) : ServingStatus.SERVICE_UNKNOWN;
        if (status !== last) yield { status };
        last = status;
      }
      if (this.readiness.isDraining && known && last !== ServingStatus.NOT_SERVING && !ctx.signal.aborted) yield { status: ServingStatus.NOT_SERVING };
    } finally {
      clearTimeout(lifetime);
      ctx.signal.removeEventListener('abort', notify);
      unsubscribe();
    }
  }

  private async currentStatus(): Promise<ServingStatus> {
    if (this.readiness.isDraining) return ServingStatus.NOT_SERVING;
    return statusOf((await this.readiness.check()).ready);
  }
}
