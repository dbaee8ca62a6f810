/** The labels go-grpc-prometheus gives one method's series. */
export interface RpcMethodLabels {
  readonly grpc_type: string;
  readonly grpc_service: string;
  readonly grpc_method: string;
}

/** One method's series, resolved once so that counting a call costs no label hashing. */
export interface RpcMethodMetrics {
  started(): void;
  /** `code` is spelled as Go's codes.Code.String(): "OK", "InvalidArgument", ... */
  handled(code: string, seconds: number): void;
}

/** What the transport records of every call. */
export interface RpcMetrics {
  forMethod(labels: RpcMethodLabels): RpcMethodMetrics;
}
