import http2, { type Http2ServerRequest } from 'node:http2';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type Health,
  type HealthCheckRequest,
} from '../../gen/grpc/health/v1/health_pb.js';
import { IdentityService } from '../../gen/identity/v1/identity_pb.js';

/** "" is the server as a whole; the other names are the services it serves. */
/** The services the API port reports on; another port passes its own (`services`). */
const API_SERVICES: readonly string[] = ['', IdentityService.typeName];

const statusOf = (ready: boolean) => (ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);

export interface HealthServiceOptions {
  /** The service names answered ("" is the server as a whole); default: the API port's. */
  readonly services?: readonly string[];
  /**
   * How long one Watch stream lives before it ends with OK (clients watch again). Each open
   * Watch holds a stream and a subscription; a lifetime bounds how long a flood holds them.
   */
  readonly watchLifetimeMs: number;
}

const WATCH_PATH = '/grpc.health.v1.Health/Watch';
const WATCHERS_FULL = 'too many health watchers, try again later';

/** Watch streams live past the request timeout by design (their own lifetime bounds them). */
export const isHealthWatch = (req: Http2ServerRequest): boolean => req.url === WATCH_PATH;

/**
 * Refuses a gRPC (or gRPC-Web) Watch past the cap on watchers before Connect builds a call for
 * it: a refusal then costs microseconds instead of a call's pipeline (about 40 KB and a fraction
 * of a millisecond each), so a flood of Watch requests cannot starve the event loop on refusals
 * alone. The answer is a trailers-only RESOURCE_EXHAUSTED, as the handler would give. Returns
 * whether it answered; the Connect protocol goes on to the handler, which refuses it the same way.
 */
export function refuseWatchPastCap(readiness: ReadinessPort) {
  return (req: Http2ServerRequest): boolean => {
    if (req.url !== WATCH_PATH || !readiness.subscriptionsFull) return false;
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/grpc')) return false;
    const { stream } = req;
    stream.respond(
      { ':status': 200, 'content-type': contentType, 'grpc-status': String(Code.ResourceExhausted), 'grpc-message': WATCHERS_FULL },
      { endStream: true },
    );
    // The request may still be arriving: NO_ERROR tells the client to stop sending (RFC 9113, 8.1).
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    return true;
  };
}

/** grpc.health.v1.Health, answered from the same readiness rule as /readyz. */
export class HealthServiceHandler implements ServiceImpl<typeof Health> {
  constructor(
    private readonly readiness: ReadinessPort,
    private readonly options: HealthServiceOptions,
  ) {
    this.services = options.services ?? API_SERVICES;
  }

  private readonly services: readonly string[];

  async check(req: HealthCheckRequest) {
    if (!this.services.includes(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
    return { status: await this.currentStatus() };
  }

  async list() {
    const status = await this.currentStatus();
    return { statuses: Object.fromEntries(this.services.map((service) => [service, { status }])) };
  }

  /**
   * Sends the status now and on every change; ends with OK when the server drains (so shutdown
   * is not held up) or the stream's lifetime is over. An unknown service gets SERVICE_UNKNOWN
   * and the call stays open, as health.proto asks. Past the cap on watchers: RESOURCE_EXHAUSTED.
   */
  async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
    const known = this.services.includes(req.service);
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
    if (unsubscribe === undefined) throw new ConnectError(WATCHERS_FULL, Code.ResourceExhausted);
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
