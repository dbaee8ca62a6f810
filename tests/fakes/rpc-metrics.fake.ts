import type { RpcMethodLabels, RpcMetrics } from '../../src/application/ports/rpc-metrics.port.js';

/** Every call the transport counted, as `Service/Method` and the code it ended with. */
export class FakeRpcMetrics implements RpcMetrics {
  readonly started: string[] = [];
  readonly handled: { readonly method: string; readonly code: string }[] = [];

  forMethod(labels: RpcMethodLabels) {
    const method = `${labels.grpc_service}/${labels.grpc_method}`;
    return {
      started: () => void this.started.push(method),
      handled: (code: string) => void this.handled.push({ method, code }),
    };
  }
}
