import { performance } from 'node:perf_hooks';
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from '@connectrpc/connect';
import { kRequestSignal, whyCallStopped } from '../request-context.js';

/** When the call's stream opened (performance.now()), stamped as its headers arrive. */
export const kCallOpenedAt = createContextKey<number | undefined>(undefined, { description: 'when the stream of the call opened' });

/**
 * Stamps the moment a call's stream opened into its context values. Connect computes them as
 * the request headers arrive, before it reads the body, so the request timeout counts the time
 * spent reading the request (a body that never comes held a call for ever when it did not).
 */
export function withCallOpenedAt<R>(contextValues: (req: R) => ContextValues): (req: R) => ContextValues {
  return (req) => {
    const values = contextValues(req);
    values.set(kCallOpenedAt, performance.now());
    return values;
  };
}

const timedOut = () => new ConnectError('the request took longer than the server allows', Code.DeadlineExceeded);

/**
 * Bounds every unary call by the server's request timeout, counted from the moment its stream
 * opened, as well as the caller's deadline. The combined signal reaches the use cases, which
 * stop their work (and roll back) when it fires; the race answers the caller at that moment
 * rather than when the work notices. One controller and one timer per call, both released when
 * the call ends: this runs on every request, so it avoids AbortSignal.any/timeout and their
 * lingering listeners. A body still unread when the time is up never reaches this interceptor;
 * the API server resets such streams (see ApiServer).
 */
export function deadlineInterceptor(requestTimeoutMs: number): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    if (req.signal.aborted) throw whyCallStopped(req.signal);
    const openedAt = req.contextValues.get(kCallOpenedAt) ?? performance.now();
    const remainingMs = requestTimeoutMs - (performance.now() - openedAt);
    if (remainingMs <= 0) throw timedOut();
    const controller = new AbortController();
    let reject: (error: ConnectError) => void = () => undefined;
    const stopped = new Promise<never>((_, fail) => (reject = fail));
    const stop = (error: ConnectError) => {
      controller.abort(error);
      reject(error);
    };
    const onCallerGone = () => stop(whyCallStopped(req.signal));
    const timer = setTimeout(() => stop(timedOut()), remainingMs);
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
