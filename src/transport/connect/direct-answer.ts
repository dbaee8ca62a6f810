import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Code, ConnectError } from '@connectrpc/connect';
import { toConnectError } from './error-mapper.js';
import { inFlight, type FastRoute, type FastServeOptions } from './fast-call.js';
import { requestTimedOut } from './interceptors/deadline.interceptor.js';
import { callerCancelled, whyCallStopped } from './request-context.js';

/**
 * A call answered without the interceptors: its message and the request id to echo with it
 * (none for a quiet method's success, as the observe interceptor does), or its error, which
 * carries the request id in its metadata.
 */
export type DirectAnswer = { readonly message: object; readonly requestId: string | undefined; readonly error?: undefined } | { readonly message?: undefined; readonly error: ConnectError };

/** The call as the fast path has it once its request is read. */
export interface DirectCall {
  readonly stream: http2.ServerHttp2Stream;
  readonly headers: http2.IncomingHttpHeaders;
  readonly input: unknown;
  /** performance.now() when the stream opened: the request timeout counts from then. */
  readonly openedAt: number;
  /** The caller's grpc-timeout (or connect-timeout-ms), from when the stream opened. */
  readonly timeoutMs: number | undefined;
}

/** connect's own words for a caller's deadline (createDeadlineSignal). */
const callerDeadline = () => new ConnectError('the operation timed out', Code.DeadlineExceeded);

/**
 * Answers a call of a method whose implementation reads nothing of its call's context
 * (FastRoute.answer) without the interceptors, as they would answer it, and returns true; or
 * returns false, having done nothing, and the call goes through them. `send` is called once,
 * with the answer or the error, also for a caller gone (then the stream is closed); it must not throw. What the interceptors do
 * for such a method is done here with no promise, signal, context object or closure chain of
 * theirs (issue 16: they were a fifth of a cached call's time):
 * - observe: the same observation counts and logs the call, x-request-id goes out with the
 *   answer (not with a quiet method's success) or in the error's metadata;
 * - error mapping: the one table, toConnectError;
 * - deadline: the answer races the server's request timeout (counted from the stream's
 *   opening), the caller's deadline, the caller going away (CANCELED, nothing sent) and the
 *   server shutting down (UNAVAILABLE), with the interceptor's and connect's own errors.
 * An answer known at once (FastRoute.answerNow: a cached token) is sent before this returns.
 * A deadline already passed, a server already shutting down or a stream already gone leave
 * the call to the interceptors, whose answers to those are the reference.
 */
export function answerDirectly(route: FastRoute, call: DirectCall, options: FastServeOptions, send: (answer: DirectAnswer) => void): boolean {
  const { answer, answerNow, observation } = route;
  if (options.shutdownSignal.aborted || call.stream.closed) return false;
  const startedAt = performance.now();
  const elapsed = startedAt - call.openedAt;
  const serverLeft = options.requestTimeoutMs - elapsed;
  const callerLeft = call.timeoutMs === undefined ? Number.POSITIVE_INFINITY : call.timeoutMs - elapsed;
  if (serverLeft <= 0 || callerLeft <= 0) return false;

  // Made only when something names it: a quiet method's success at the default level needs none.
  let id: string | undefined;
  const requestId = () => (id ??= options.identity.requestId(call.headers));
  const client = () => options.identity.clientAddress({ socket: call.stream.session?.socket ?? {}, headers: call.headers });
  const finish = (message: object | undefined, error: ConnectError | undefined): DirectAnswer => {
    error?.metadata.set('x-request-id', requestId());
    observation.finished(startedAt, error, requestId, client);
    if (error !== undefined) return { error };
    return { message: message!, requestId: observation.quietOnSuccess ? undefined : requestId() };
  };
  observation.started();

  let pending: Promise<object>;
  try {
    const now = answerNow?.(call.input);
    if (now !== undefined) {
      send(finish(now, undefined));
      return true;
    }
    pending = answer(call.input);
  } catch (thrown) {
    send(finish(undefined, toConnectError(thrown)));
    return true;
  }
  // A caller gone is counted as CANCELED, and its answer goes nowhere (the senders check the stream).
  race(pending, call.stream, options.shutdownSignal, serverLeft, callerLeft, (message, error) => send(finish(message, error)));
  return true;
}

/**
 * The answer, or what stops the call first, as the deadline interceptor races them: `end` is
 * called once, and whatever lost leaves nothing behind (timer, listener, shutdown hook).
 */
function race(
  pending: Promise<object>,
  stream: http2.ServerHttp2Stream,
  shutdown: AbortSignal,
  serverLeft: number,
  callerLeft: number,
  end: (message: object | undefined, error: ConnectError | undefined) => void,
): void {
  const calls = inFlight(shutdown);
  let ended = false;
  const stop = (message: object | undefined, error: ConnectError | undefined) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    stream.off('close', onClose);
    calls.delete(onShutdown);
    end(message, error);
  };
  const onClose = () => stop(undefined, callerCancelled(new ConnectError('the stream closed before the call ended', Code.Canceled)));
  const onShutdown = () => stop(undefined, whyCallStopped(shutdown));
  // Whole milliseconds, as the deadline interceptor's (Node keeps a timer list per distinct duration).
  const timer = setTimeout(() => stop(undefined, callerLeft < serverLeft ? callerDeadline() : requestTimedOut()), Math.ceil(Math.min(serverLeft, callerLeft)));
  stream.on('close', onClose);
  calls.add(onShutdown);
  pending.then(
    (message) => stop(message, undefined),
    (thrown: unknown) => stop(undefined, toConnectError(thrown)),
  );
}
