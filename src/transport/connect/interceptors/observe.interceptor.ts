import { performance } from 'node:perf_hooks';
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { Metrics } from '../../../infrastructure/observability/metrics.js';
import { kClientAddress, kRequestId } from '../request-context.js';

type GrpcMetrics = Pick<Metrics, 'grpcStarted' | 'grpcHandled' | 'grpcHandlingSeconds'>;

const GRPC_TYPE = { unary: 'unary', server_streaming: 'server_stream', client_streaming: 'client_stream', bidi_streaming: 'bidi_stream' } as const;

/** go-grpc-prometheus spells codes as Go's codes.Code.String(): "OK", "InvalidArgument", ... */
const codeName = (error: ConnectError | undefined): string => (error === undefined ? 'OK' : Code[error.code]);

/**
 * One log line and the go-grpc-prometheus series per call. The x-request-id is echoed in
 * the response headers so a caller can quote it.
 */
export function observeInterceptor(logger: Logger, metrics: GrpcMetrics): Interceptor {
  return (next) => async (req) => {
    const labels = { grpc_type: GRPC_TYPE[req.method.methodKind], grpc_service: req.service.typeName, grpc_method: req.method.name };
    const requestId = req.contextValues.get(kRequestId);
    const started = performance.now();
    metrics.grpcStarted.inc(labels);
    const finish = (error: unknown) => {
      const connectError = error === undefined ? undefined : ConnectError.from(error);
      const seconds = (performance.now() - started) / 1000;
      metrics.grpcHandled.inc({ ...labels, grpc_code: codeName(connectError) });
      metrics.grpcHandlingSeconds.observe(labels, seconds);
      const line = {
        requestId,
        method: `${labels.grpc_service}/${labels.grpc_method}`,
        code: codeName(connectError),
        durationMs: Math.round(seconds * 1_000_000) / 1000,
        client: req.contextValues.get(kClientAddress),
      };
      if (connectError?.code === Code.Internal || connectError?.code === Code.Unknown) {
        logger.error({ ...line, err: connectError.cause ?? connectError }, 'rpc failed');
      } else {
        logger.info(line, 'rpc');
      }
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
    outcome = signal.aborted ? ConnectError.from(signal.reason, Code.Canceled) : undefined;
  } catch (error) {
    outcome = error;
    throw error;
  } finally {
    finish(outcome);
  }
}
