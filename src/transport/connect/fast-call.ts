import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { DescMethodUnary } from '@bufbuild/protobuf';
import { Code, ConnectError, type ContextValues, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { createDeadlineSignal } from '@connectrpc/connect/protocol';
import { LiteHeaders } from './lite-headers.js';
import { kCallOpenedAt } from './interceptors/deadline.interceptor.js';
import type { MethodObservation } from './interceptors/observe.interceptor.js';
import type { RequestIdentity, RequestLike } from './request-context.js';

/** One hot method as the fast path serves it. */
export interface FastRoute {
  readonly method: DescMethodUnary;
  /** The interceptors wrapped around the implementation once, as connect does per call. */
  readonly invoke: (req: UnaryRequest) => Promise<UnaryResponse>;
  /** The implementation's input from the protobuf encoding (fromBinary, or the method's own reader). */
  readonly decode: (bytes: Uint8Array) => unknown;
  /** The implementation's input from the request message (Connect JSON's parser gives a message). */
  readonly fromMessage: (message: unknown) => unknown;
  /** The answer's protobuf encoding; a frozen answer is encoded once (see encodedOnce). */
  readonly encode: (message: object) => Uint8Array;
  /** The answer as a message when it is known without waiting, else undefined (see direct-answer). */
  readonly answerNow: ((input: unknown) => object | undefined) | undefined;
  /** The implementation, which reads nothing of its call's context (see direct-answer). */
  readonly answer: (input: unknown) => Promise<object>;
  /** The method's metrics and log line, the same the observe interceptor uses. */
  readonly observation: MethodObservation;
}

/** What serving a call needs from the fast path's options. */
export interface FastServeOptions {
  readonly contextValues: (req: RequestLike) => ContextValues;
  readonly identity: RequestIdentity;
  readonly readMaxBytes: number;
  readonly requestTimeoutMs: number;
  readonly shutdownSignal: AbortSignal;
}

/**
 * The context values of a call that goes through the interceptors, made once its request is
 * read: the request timeout still counts from `openedAt`, when its stream opened.
 */
export function fastCallValues(options: FastServeOptions, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, openedAt: number): ContextValues {
  const values = options.contextValues({ socket: stream.session?.socket ?? {}, headers });
  values.set(kCallOpenedAt, openedAt);
  return values;
}

/** What is left of the caller's grpc-timeout (or connect-timeout-ms) given when the stream opened. */
export const remainingMs = (timeoutMs: number | undefined, openedAt: number): number | undefined =>
  // Whole milliseconds, as the deadline interceptor's (Node keeps a timer list per distinct duration).
  timeoutMs === undefined ? undefined : Math.ceil(timeoutMs - (performance.now() - openedAt));

/** Anything a fast-path call failed with, as the caller receives it: a ConnectError, or INTERNAL. */
export const asFailure = (error: unknown): ConnectError => (error instanceof ConnectError ? error : new ConnectError('internal error', Code.Internal, undefined, undefined, error));

/**
 * The call's signal, as connect builds it: aborted when the stream closes under the call (the
 * caller went away), when the server shuts down, and at the caller's grpc-timeout with
 * connect's own DEADLINE_EXCEEDED (at once when `timeoutMs`, what is left of it, is spent).
 * Listeners go when the call ends; it is never aborted without a reason, which would build a
 * DOMException. Made only for a call that goes through the interceptors, once its request is read.
 */
export function callSignal(stream: http2.ServerHttp2Stream, shutdown: AbortSignal, timeoutMs: number | undefined) {
  const controller = new AbortController();
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onClose = () => abort(new ConnectError('the stream closed before the call ended', Code.Canceled));
  const onShutdown = () => abort(shutdown.reason);
  const calls = inFlight(shutdown);
  const deadline = timeoutMs === undefined ? undefined : createDeadlineSignal(timeoutMs);
  const onDeadline = () => abort(deadline?.signal.reason);
  if (shutdown.aborted) onShutdown();
  else calls.add(onShutdown);
  if (deadline !== undefined) {
    if (deadline.signal.aborted) onDeadline();
    else deadline.signal.addEventListener('abort', onDeadline, { once: true });
  }
  // Made once the request is read: a stream reset in the same read as its last bytes has already closed.
  if (stream.closed || stream.destroyed) onClose();
  else stream.once('close', onClose);
  return {
    signal: controller.signal,
    abort,
    release: () => {
      calls.delete(onShutdown);
      deadline?.cleanup();
      stream.off('close', onClose);
    },
  };
}

/**
 * The calls in flight under one shutdown signal, told when it fires: one listener on the
 * signal for all of them (adding and removing an EventTarget listener per call costs more).
 */
const inFlightBySignal = new WeakMap<AbortSignal, Set<() => void>>();
export function inFlight(shutdown: AbortSignal): Set<() => void> {
  let calls = inFlightBySignal.get(shutdown);
  if (calls === undefined) {
    const created = new Set<() => void>();
    inFlightBySignal.set(shutdown, (calls = created));
    shutdown.addEventListener('abort', () => created.forEach((abort) => abort()), { once: true });
  }
  return calls;
}

/**
 * A fast-path request's whole body, read with stream listeners (the stream's async iterator
 * cost a fifth of a call), handed to `done` from the stream's own events, so that an answer
 * known at once goes out in the same turn. `admit` sees the chunks so far after each one
 * arrives and refuses the body by returning an error: reading stops there (the rest is left
 * unread) and `done` gets it. A stream reset or cut before its body ended is a cancelled call:
 * Node emits no 'error' for a CANCEL, and nobody reads that answer. `done` is called once; the
 * listeners stay on a finished stream, which the stream's end releases with them.
 */
export function readRequestBody(
  stream: http2.ServerHttp2Stream,
  admit: (chunks: readonly Buffer[], received: number) => ConnectError | undefined,
  done: (error: ConnectError | undefined, body: Buffer | undefined) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const onData = (chunk: Buffer) => {
    if (settled) return;
    chunks.push(chunk);
    received += chunk.byteLength;
    const refused = admit(chunks, received);
    if (refused === undefined) return;
    settled = true;
    stream.off('data', onData);
    done(refused, undefined);
  };
  stream.on('data', onData);
  stream.on('end', () => {
    if (settled) return;
    settled = true;
    done(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  });
  stream.on('close', () => {
    if (settled) return;
    settled = true;
    done(new ConnectError('the stream closed before its request ended', Code.Canceled), undefined);
  });
}

export const single = (value: string | string[] | undefined): string | null => (value === undefined ? null : Array.isArray(value) ? value.join(', ') : value);

/**
 * One call as the interceptors see it (a UnaryRequest); its `message` is the implementation's
 * input (see FastRoute.decode), which no interceptor reads. The implementation itself reads
 * nothing of its call (FastUnaryMethod.answer), so this is no HandlerContext. Headers objects
 * cost microseconds each and the hot methods never read the request's nor write trailers, so
 * those are built the first time anyone asks.
 */
export class FastCall {
  readonly stream = false;
  readonly requestMethod = 'POST';
  private requestHeaders: Headers | undefined;
  responseHeaders: Headers | undefined;
  responseTrailers: Headers | undefined;

  constructor(
    private readonly headers: http2.IncomingHttpHeaders,
    readonly method: DescMethodUnary,
    readonly signal: AbortSignal,
    readonly contextValues: ContextValues,
    readonly message: unknown,
  ) {}

  get service() {
    return this.method.parent;
  }

  get url(): string {
    return this.headers[':path'] ?? '';
  }

  get header(): Headers {
    return (this.requestHeaders ??= toHeaders(this.headers));
  }
}

/** The implementation's answer as the interceptors see it (a UnaryResponse), sharing the call's header lists. */
export class FastResponse {
  readonly stream = false;

  constructor(
    private readonly call: FastCall,
    readonly message: unknown,
  ) {}

  get service() {
    return this.call.method.parent;
  }

  get method() {
    return this.call.method;
  }

  get header(): Headers {
    return (this.call.responseHeaders ??= new LiteHeaders());
  }

  get trailer(): Headers {
    return (this.call.responseTrailers ??= new LiteHeaders());
  }

  /** The trailers, if anyone wrote any. */
  get trailerIfAny(): Headers | undefined {
    return this.call.responseTrailers;
  }
}

function toHeaders(source: http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(source)) {
    if (key.startsWith(':') || value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(key, item);
    else headers.append(key, value);
  }
  return headers;
}
