import type { RpcMethodLabels, RpcMethodMetrics, RpcMetrics } from '../../application/ports/rpc-metrics.port.js';
import type { Metrics } from './metrics.js';

type GrpcSeries = Pick<Metrics, 'grpcStarted' | 'grpcHandled' | 'grpcHandlingSeconds' | 'onRpcScrape'>;
/** One counter series and the calls counted since the last scrape. */
interface PendingCount {
  readonly child: ReturnType<GrpcSeries['grpcHandled']['labels']>;
  pending: number;
}

/** The RPC metrics port on the go-grpc-prometheus series of the registry. */
export function prometheusRpcMetrics(metrics: GrpcSeries): RpcMetrics {
  return { forMethod: (labels) => methodSeries(metrics, labels) };
}

/**
 * The series of one method, resolved once. The two counters count in plain numbers and reach
 * prom-client when scraped: its inc() validates and hashes the label set on every call, which
 * cost a cached VerifyToken 2 % of its time (issue 16). A scrape always sees every call
 * counted before it. The latency histogram is observed per call.
 */
function methodSeries(metrics: GrpcSeries, labels: RpcMethodLabels): RpcMethodMetrics {
  const started: PendingCount = { child: metrics.grpcStarted.labels({ ...labels }), pending: 0 };
  const seconds = metrics.grpcHandlingSeconds.labels({ ...labels });
  const handled = new Map<string, PendingCount>();
  const flush = (count: PendingCount) => {
    if (count.pending === 0) return;
    count.child.inc(count.pending);
    count.pending = 0;
  };
  metrics.onRpcScrape(() => {
    flush(started);
    handled.forEach(flush);
  });
  return {
    started: () => void (started.pending += 1),
    handled(code, elapsed) {
      let count = handled.get(code);
      if (count === undefined) handled.set(code, (count = { child: metrics.grpcHandled.labels({ ...labels, grpc_code: code }), pending: 0 }));
      count.pending += 1;
      seconds.observe(elapsed);
    },
  };
}
