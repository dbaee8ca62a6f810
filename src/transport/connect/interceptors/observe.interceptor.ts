import { performance } from 'node:perf_hooks';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { Metrics } from '../../../infrastructure/observability/metrics.js';
import { toConnectError } from '../error-mapper.js';
import { kClientAddress, kRequestId, whyCallStopped } from '../request-context.js';

type GrpcMetrics = Pick<Metrics, 'grpcStarted' | 'grpcHandled' | 'grpcHandlingSeconds'>;

const GRPC_TYPE = { unary: 'unary', server_streaming: 'server_stream', client_streaming: 'client_stream', bidi_streaming: 'bidi_stream' } as const;

/** go-grpc-prometheus spells codes as Go's codes.Code.String(): "OK", "InvalidArgument", ... */
const codeName = (error: ConnectError | undefined): string => (error === undefined ? 'OK' : Code[error.code]);

/** The series of one method, resolved once: prom-client hashes label sets on every inc() otherwise. */
function methodSeries(metrics: GrpcMetrics, labels: Record<'grpc_type' | 'grpc_service' | 'grpc_method', string>) {
  const handled = new Map<string, ReturnType<GrpcMetrics['grpcHandled']['labels']>>();
  return {
    started: metrics.grpcStarted.labels(labels),
    seconds: metrics.grpcHandlingSeconds.labels(labels),
    handled: (code: string) => {
      let child = handled.get(code);
      if (child === undefined) handled.set(code, (child = metrics.grpcHandled.labels({ ...labels, grpc_code: code })));
      return child;
    },
  };
}

/**
 * The edge of every call: errors mapped to status codes (toConnectError), one log line and
 * the go-grpc-prometheus series, and the x-request-id echoed so a caller can quote it. One
 * interceptor rather than three: each layer costs promises on every request.
 */
export function observeInterceptor(logger: Logger, metrics: GrpcMetrics): Interceptor {
  const seriesByMethod = new Map<string, ReturnType<typeof methodSeries>>();
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    let series = seriesByMethod.get(method);
    if (series === undefined) {
      const labels = { grpc_type: GRPC_TYPE[req.method.methodKind], grpc_service: req.service.typeName, grpc_method: req.method.name };
      seriesByMethod.set(method, (series = methodSeries(metrics, labels)));
    }
    const requestId = req.contextValues.get(kRequestId);
    const started = performance.now();
    series.started.inc();
    const finish = (error: unknown) => {
      const connectError = error === undefined ? undefined : ConnectError.from(error);
      const seconds = (performance.now() - started) / 1000;
      const code = codeName(connectError);
      series.handled(code).inc();
      series.seconds.observe(seconds);
      const failed = connectError?.code === Code.Internal || connectError?.code === Code.Unknown;
      if (!logger.isLevelEnabled(failed ? 'error' : 'info')) return;
      const line = { requestId, method, code, durationMs: Math.round(seconds * 1_000_000) / 1000, client: req.contextValues.get(kClientAddress) };
      if (failed) logger.error({ ...line, err: connectError?.cause ?? connectError }, 'rpc failed');
      else logger.info(line, 'rpc');
    };
    try {
      const res = await next(req);
      res.header.set('x-request-id', requestId);
      if (!res.stream) {
        finish(undefined);
        return res;
      }
      return { ...res, message: observeStream(res.message, req.signal, finish) };
    } catch (error) {
      // Every error leaving a handler goes through the one mapping to a status code. A failed
      // call's caller needs the request id most: it goes out with the error's metadata.
      const connectError = toConnectError(error);
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
