import { performance } from 'node:perf_hooks';
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor, type StreamResponse, type UnaryResponse } from '@connectrpc/connect';
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

/** The server's request timeout passed: what the caller receives. */
export const requestTimedOut = () => new ConnectError('the request took longer than the server allows', Code.DeadlineExceeded);

/**
 * What a call's handler stops on (kRequestSignal): the caller's signal with the server's request
 * timeout folded in. Its AbortController is made only when a handler asks for the signal; the
 * hot read-only calls (VerifyToken, Check) never do, and one controller and signal a call were
 * measurable there (issue 16).
 */
class CallStop {
  private controller: AbortController | undefined;
  private reason: ConnectError | undefined;

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  stop(reason: ConnectError): void {
    this.reason ??= reason;
    this.controller?.abort(reason);
  }
}

/**
 * Bounds every unary call by the server's request timeout, counted from the moment its stream
 * opened, as well as the caller's deadline. The combined signal reaches the use cases, which
 * stop their work (and roll back) when it fires; the caller is answered at that moment rather
 * than when the work notices. One timer and one listener per call, both released when the call
 * ends: this runs on every request, so it avoids AbortSignal.any/timeout (their listeners
 * linger) and Promise.race (its arrays and extra promises). A body still unread when the time
 * is up never reaches this interceptor; the API server resets such streams (see ApiServer).
 */
export function deadlineInterceptor(requestTimeoutMs: number): Interceptor {
  return (next) => (req) => {
    if (req.stream) return next(req);
    if (req.signal.aborted) return Promise.reject(whyCallStopped(req.signal));
    const openedAt = req.contextValues.get(kCallOpenedAt) ?? performance.now();
    const remainingMs = requestTimeoutMs - (performance.now() - openedAt);
    if (remainingMs <= 0) return Promise.reject(requestTimedOut());
    const stop = new CallStop();
    req.contextValues.set(kRequestSignal, stop);
    return new Promise((resolve, reject) => {
      const release = () => {
        clearTimeout(timer);
        req.signal.removeEventListener('abort', onCallerGone);
      };
      const end = (error: ConnectError) => {
        release();
        stop.stop(error);
        reject(error);
      };
      const onCallerGone = () => end(whyCallStopped(req.signal));
      // Whole milliseconds: Node keeps one timer list per distinct duration, and a fractional
      // remainder per call made a new list (a heap insert) for nearly every call.
      const timer = setTimeout(() => end(requestTimedOut()), Math.ceil(remainingMs));
      req.signal.addEventListener('abort', onCallerGone, { once: true });
      let answer: Promise<UnaryResponse | StreamResponse>;
      try {
        answer = next(req);
      } catch (error) {
        // An interceptor that throws instead of rejecting: the same outcome, nothing left behind.
        release();
        throw error;
      }
      answer.then(
        (response) => {
          release();
          resolve(response);
        },
        (error: unknown) => {
          release();
          // Passed on as thrown: the error mapping outside turns whatever it is into a status.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(error);
        },
      );
    });
  };
}
