import type { RpcMethodLabels, RpcMethodMetrics, RpcMetrics } from '../../application/ports/rpc-metrics.port.js';
import type { Metrics } from './metrics.js';

type GrpcSeries = Pick<Metrics, 'grpcStarted' | 'grpcHandled' | 'grpcHandlingSeconds'>;

/** The RPC metrics port on the go-grpc-prometheus series of the registry. */
export function prometheusRpcMetrics(metrics: GrpcSeries): RpcMetrics {
  return { forMethod: (labels) => methodSeries(metrics, labels) };
}

/** The series of one method, resolved once: prom-client hashes label sets on every inc() otherwise. */
function methodSeries(metrics: GrpcSeries, labels: RpcMethodLabels): RpcMethodMetrics {
  const started = metrics.grpcStarted.labels({ ...labels });
  const seconds = metrics.grpcHandlingSeconds.labels({ ...labels });
  const handled = new Map<string, ReturnType<GrpcSeries['grpcHandled']['labels']>>();
  return {
    started: () => started.inc(),
    handled(code, elapsed) {
      let child = handled.get(code);
      if (child === undefined) handled.set(code, (child = metrics.grpcHandled.labels({ ...labels, grpc_code: code })));
      child.inc();
      seconds.observe(elapsed);
    },
  };
}
