import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { kRequestSignal } from '../request-context.js';

/**
 * Bounds every unary call by the server's request timeout as well as the caller's deadline.
 * The combined signal reaches the use cases, which stop their work (and roll back) when it
 * fires; the race answers the caller at that moment rather than when the work notices.
 */
export function deadlineInterceptor(requestTimeoutMs: number): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const signal = AbortSignal.any([req.signal, timeout]);
    req.contextValues.set(kRequestSignal, signal);
    signal.throwIfAborted();
    const aborted = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(reasonOf(signal, timeout)), { once: true });
    });
    return Promise.race([next(req), aborted]);
  };
}

function reasonOf(signal: AbortSignal, timeout: AbortSignal): ConnectError {
  if (signal.reason instanceof ConnectError) return signal.reason;
  if (timeout.aborted) return new ConnectError('the request took longer than the server allows', Code.DeadlineExceeded);
  return new ConnectError('the request was cancelled', Code.Canceled);
}
