import { performance } from 'node:perf_hooks';
import type { DescMethod } from '@bufbuild/protobuf';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { RpcMethodMetrics, RpcMetrics } from '../../../application/ports/rpc-metrics.port.js';
import { kClientAddress, kRequestId, whyCallStopped } from '../request-context.js';

const GRPC_TYPE = { unary: 'unary', server_streaming: 'server_stream', client_streaming: 'client_stream', bidi_streaming: 'bidi_stream' } as const;

/** go-grpc-prometheus spells codes as Go's codes.Code.String(): "OK", "InvalidArgument", ... */
const codeName = (error: ConnectError | undefined): string => (error === undefined ? 'OK' : Code[error.code]);

export interface ObserveOptions {
  /**
   * Methods ("package.Service/Method") whose successful calls log at debug instead of info.
   * At info, a line for every call of the hot read-only methods (VerifyToken, Check) cost 40 %
   * of their throughput (measured: 8,000–10,000 calls per CPU-second at warn, 4,300–5,900 at
   * info); their failures, and every call of the other methods, still log at info.
   */
  readonly quietOnSuccess?: ReadonlySet<string>;
}

/** One method's observation: its series and its log line, resolved once. */
export interface MethodObservation {
  /**
   * Its successes log at debug (ObserveOptions.quietOnSuccess) and so carry no x-request-id:
   * at the default level no line names them.
   */
  readonly quietOnSuccess: boolean;
  /** Counts the call as started. */
  started(): void;
  /**
   * Counts the call as handled with the code the caller receives, and writes its log line.
   * `startedAt` is performance.now() when the call started; the request id and the client
   * address are asked for only when a line is written.
   */
  finished(startedAt: number, error: ConnectError | undefined, requestId: () => string, client: () => string): void;
}

/** The observation of a method, by its descriptor (the router hands every call of a method the same one). */
export type CallObserver = (method: DescMethod) => MethodObservation;

/**
 * The go-grpc-prometheus series and the log line of every call, shared by the interceptor and
 * the fast path's answers that need no interceptor (see unary-fast-path), so both count and
 * log a call the same way.
 */
export function callObserver(logger: Logger, metrics: RpcMetrics, options: ObserveOptions = {}): CallObserver {
  const quiet = options.quietOnSuccess ?? new Set<string>();
  const byMethod = new Map<DescMethod, MethodObservation>();
  return (descriptor) => {
    let known = byMethod.get(descriptor);
    if (known === undefined) {
      const labels = { grpc_type: GRPC_TYPE[descriptor.methodKind], grpc_service: descriptor.parent.typeName, grpc_method: descriptor.name };
      const method = `${descriptor.parent.typeName}/${descriptor.name}`;
      byMethod.set(descriptor, (known = methodObservation(logger, method, metrics.forMethod(labels), quiet.has(method))));
    }
    return known;
  };
}

function methodObservation(logger: Logger, method: string, series: RpcMethodMetrics, quietOnSuccess: boolean): MethodObservation {
  return {
    quietOnSuccess,
    started: () => series.started(),
    finished(startedAt, error, requestId, client) {
      const seconds = (performance.now() - startedAt) / 1000;
      const code = codeName(error);
      series.handled(code, seconds);
      const failed = error?.code === Code.Internal || error?.code === Code.Unknown;
      const level = failed ? 'error' : error === undefined && quietOnSuccess ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      const line = { requestId: requestId(), method, code, durationMs: Math.round(seconds * 1_000_000) / 1000, client: client() };
      if (failed) logger.error({ ...line, err: error?.cause ?? error }, 'rpc failed');
      else logger[level](line, 'rpc');
    },
  };
}

/**
 * The edge of every call: one log line and the go-grpc-prometheus series, and the
 * x-request-id echoed so a caller can quote it (on every failure, and on the successes whose
 * line is written at info: see MethodObservation.quietOnSuccess). It sits outside the error mapping, so the
 * code it counts is the one the caller receives.
 */
export function observeInterceptor(observer: CallObserver): Interceptor {
  return (next) => async (req) => {
    const observation = observer(req.method);
    const requestId = req.contextValues.get(kRequestId);
    const client = () => req.contextValues.get(kClientAddress);
    const startedAt = performance.now();
    observation.started();
    const finish = (error: unknown) => observation.finished(startedAt, error === undefined ? undefined : ConnectError.from(error), () => requestId, client);
    try {
      const res = await next(req);
      if (!observation.quietOnSuccess) res.header.set('x-request-id', requestId);
      if (!res.stream) {
        finish(undefined);
        return res;
      }
      return { ...res, message: observeStream(res.message, req.signal, finish) };
    } catch (error) {
      // A failed call's caller needs the request id most: it goes out with the error's metadata.
      const connectError = ConnectError.from(error);
      connectError.metadata.set('x-request-id', requestId);
      finish(connectError);
      throw connectError;
    }
  };
}

/**
 * A streaming call is handled when its response stream ends, not when it starts. A handler
 * that ends quietly because the caller went away (as Watch does) was cancelled, not OK.
 */
async function* observeStream<T>(messages: AsyncIterable<T>, signal: AbortSignal, finish: (error: unknown) => void): AsyncIterable<T> {
  let outcome: unknown = new ConnectError('the stream was cancelled', Code.Canceled);
  try {
    yield* messages;
    outcome = signal.aborted ? whyCallStopped(signal) : undefined;
  } catch (error) {
    outcome = error;
    throw error;
  } finally {
    finish(outcome);
  }
}
