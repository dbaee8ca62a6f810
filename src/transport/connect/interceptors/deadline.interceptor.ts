import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { kRequestSignal, whyCallStopped } from '../request-context.js';

/**
 * Bounds every unary call by the server's request timeout as well as the caller's deadline.
 * The combined signal reaches the use cases, which stop their work (and roll back) when it
 * fires; the race answers the caller at that moment rather than when the work notices.
 * One controller and one timer per call, both released when the call ends: this runs on
 * every request, so it avoids AbortSignal.any/timeout and their lingering listeners.
 */
export function deadlineInterceptor(requestTimeoutMs: number): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    if (req.signal.aborted) throw whyCallStopped(req.signal);
    const controller = new AbortController();
    let reject: (error: ConnectError) => void = () => undefined;
    const stopped = new Promise<never>((_, fail) => (reject = fail));
    const stop = (error: ConnectError) => {
      controller.abort(error);
      reject(error);
    };
    const onCallerGone = () => stop(whyCallStopped(req.signal));
    const timer = setTimeout(() => stop(new ConnectError('the request took longer than the server allows', Code.DeadlineExceeded)), requestTimeoutMs);
    req.signal.addEventListener('abort', onCallerGone, { once: true });
    req.contextValues.set(kRequestSignal, controller.signal);
    try {
      return await Promise.race([next(req), stopped]);
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onCallerGone);
    }
  };
}
