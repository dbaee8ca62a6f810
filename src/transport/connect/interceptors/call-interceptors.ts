import type { Interceptor } from '@connectrpc/connect';
import { deadlineInterceptor } from './deadline.interceptor.js';
import { errorMappingInterceptor } from './error-mapping.interceptor.js';
import { observeInterceptor, type CallObserver } from './observe.interceptor.js';

export interface CallInterceptorOptions {
  /** The port's call observer (callObserver), shared with its fast path. */
  readonly observer: CallObserver;
  readonly requestTimeoutMs: number;
  /** Checks that refuse a call with a typed error (mapped like any other), run just inside the mapping. */
  readonly guards?: readonly Interceptor[];
}

/**
 * The chain every port's calls go through, outside in: observe (logs and metrics see the
 * code the caller receives), error mapping (the one place a thrown error becomes a status),
 * the port's own guards, then the deadline. One list, so the API port, the management port,
 * the fast path and the in-memory router tests cannot drift apart.
 */
export function callInterceptors(options: CallInterceptorOptions): Interceptor[] {
  const { observer, requestTimeoutMs, guards = [] } = options;
  return [observeInterceptor(observer), errorMappingInterceptor, ...guards, deadlineInterceptor(requestTimeoutMs)];
}
