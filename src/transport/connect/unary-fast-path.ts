import http2 from 'node:http2';
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethodUnary, type MessageShape } from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from '@connectrpc/connect';
import { compressionGzip, compressionBrotli } from '@connectrpc/connect-node';
import { createDeadlineSignal, type Compression } from '@connectrpc/connect/protocol';
import { contentTypeProto, parseTimeout, setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { respecGrpcMessage } from '../http/grpc-status-message.js';
import type { RequestLike } from './request-context.js';

/** A unary method the fast path answers, with the very implementation Connect's router serves. */
export interface FastUnaryMethod {
  readonly method: DescMethodUnary;
  readonly impl: (request: never, context: HandlerContext) => Promise<unknown>;
}

export interface UnaryFastPathOptions {
  readonly methods: readonly FastUnaryMethod[];
  /** The same interceptors, in the same order, as the Connect adapter's. */
  readonly interceptors: readonly Interceptor[];
  /** The same function as the Connect adapter's `contextValues`. */
  readonly contextValues: (req: RequestLike) => ContextValues;
  readonly readMaxBytes: number;
  readonly shutdownSignal: AbortSignal;
}

/** Answers the stream's call and returns true, or returns false having touched nothing. */
export type FastPathHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

/** connect-node's defaults, in its order: what a response may be compressed with. */
const ACCEPT_COMPRESSION: readonly Compression[] = [compressionGzip, compressionBrotli];
/** connect's default compressMinBytes: smaller messages go out uncompressed even when negotiated. */
const COMPRESS_MIN_BYTES = 1024;
const COMPRESSED_FLAG = 0b0000_0001;
const ENVELOPE_HEADER_BYTES = 5;

interface Route {
  readonly method: DescMethodUnary;
  readonly impl: (request: unknown, context: HandlerContext) => Promise<unknown>;
  /** The interceptors wrapped around the implementation once, as connect does per call. */
  readonly invoke: (req: UnaryRequest) => Promise<UnaryResponse>;
}

/**
 * Unary gRPC calls to the hot methods (VerifyToken, ext_authz Check) without connect-node's
 * per-call machinery: its async-iterable pipeline and a DOMException for every call cost about
 * 400 µs a call, ten times what the handler itself costs (issue 16). It does only what the
 * common call needs: a plain `application/grpc` POST, uncompressed, one message. Everything
 * else (another protocol, a compressed request, an unparsable grpc-timeout) is left to Connect,
 * decided from the headers alone, before any byte of the body is read.
 *
 * What the caller sees is what Connect would send, byte for byte (tests/e2e/fast-path): the
 * same interceptors run (observe: metrics, logs, x-request-id; error mapping; deadline),
 * errors are written by connect's own setTrailerStatus, the deadline signal is connect's own,
 * and a body Connect would refuse before the interceptors run is refused here with its
 * message and code, equally before them.
 */
export function unaryFastPath(options: UnaryFastPathOptions): FastPathHandler {
  const routes = new Map<string, Route>();
  for (const { method, impl } of options.methods) {
    const chained = options.interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>(
      (next, interceptor) => interceptor(next as never) as never,
      async (req) => {
        const call = req as unknown as FastCall;
        const result = await (impl as Route['impl'])(req.message, call.handlerContext());
        const message = isMessage(result, method.output) ? result : create(method.output, result as never);
        return new FastResponse(call, message) as unknown as UnaryResponse;
      },
    );
    routes.set(`/${method.parent.typeName}/${method.name}`, { method, impl: impl as Route['impl'], invoke: chained });
  }

  return (stream, headers) => {
    const route = routes.get(headers[':path'] ?? '');
    if (route === undefined || headers[':method'] !== 'POST') return false;
    const contentType = headers['content-type'];
    if (contentType !== 'application/grpc' && contentType !== 'application/grpc+proto') return false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    const timeout = parseTimeout(single(headers['grpc-timeout']), Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) return false;
    const compression = responseCompression(single(headers['grpc-accept-encoding']));
    void serve(route, stream, headers, options, timeout.timeoutMs, compression);
    return true;
  };
}

async function serve(
  route: Route,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: UnaryFastPathOptions,
  timeoutMs: number | undefined,
  compression: Compression | undefined,
): Promise<void> {
  const contextValues = options.contextValues({ socket: stream.session?.socket ?? {}, headers });
  const responseHeaders: Record<string, string> = { 'content-type': contentTypeProto };
  if (compression !== undefined) responseHeaders['grpc-encoding'] = compression.name;
  const call = callSignal(stream, options.shutdownSignal, timeoutMs);
  try {
    const input = await readMessage(stream, route.method.input, options.readMaxBytes);
    let response: UnaryResponse;
    try {
      response = await route.invoke(new FastCall(headers, route.method, call.signal, contextValues, input, timeoutMs) as unknown as UnaryRequest);
    } catch (error) {
      throw ConnectError.from(error);
    }
    let data = toBinary(route.method.output, response.message);
    let flags = 0;
    if (compression !== undefined && data.byteLength >= COMPRESS_MIN_BYTES) {
      data = await compression.compress(data);
      flags = COMPRESSED_FLAG;
    }
    response.header.forEach((value, key) => (responseHeaders[key] ??= value));
    const trailers: Record<string, string> = { 'grpc-status': '0' };
    const trailer = response instanceof FastResponse ? response.trailerIfAny : response.trailer;
    trailer?.forEach((value, key) => (trailers[key] = value));
    respond(stream, responseHeaders, trailers, envelope(flags, data));
  } catch (error) {
    const failure = error instanceof ConnectError ? error : new ConnectError('internal error', Code.Internal, undefined, undefined, error);
    call.abort(failure);
    const trailers: Record<string, string> = {};
    setTrailerStatus(new Headers(), failure).forEach((value, key) => (trailers[key] = value));
    // As ApiServerResponse does for Connect: the message in the spec's percent-encoding.
    if (trailers['grpc-message'] !== undefined) trailers['grpc-message'] = respecGrpcMessage(trailers['grpc-message']);
    respond(stream, responseHeaders, trailers, undefined);
  } finally {
    call.release();
  }
}

/**
 * The answer as Node's compatibility response sends it for Connect: headers, the message if
 * any, then the trailers. A call answered before its request was read to the end (a message
 * over the size limit) then gets RST_STREAM NO_ERROR, as ApiServerResponse does, so a client
 * still uploading stops instead of waiting for flow-control credit.
 */
function respond(stream: http2.ServerHttp2Stream, headers: Record<string, string>, trailers: Record<string, string>, body: Buffer | undefined): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond({ ':status': 200, ...headers }, { waitForTrailers: true });
  stream.once('wantTrailers', () => {
    stream.sendTrailers(trailers);
    if (!stream.readableEnded) setImmediate(endUnread, stream);
  });
  stream.end(body);
}

function endUnread(stream: http2.ServerHttp2Stream): void {
  if (!stream.readableEnded && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * The call's signal, as connect builds it: aborted when the stream closes under the call (the
 * caller went away), when the server shuts down, and at the caller's grpc-timeout with
 * connect's own DEADLINE_EXCEEDED. Listeners go when the call ends; it is never aborted
 * without a reason, which would build a DOMException.
 */
function callSignal(stream: http2.ServerHttp2Stream, shutdown: AbortSignal, timeoutMs: number | undefined) {
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
  stream.once('close', onClose);
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
function inFlight(shutdown: AbortSignal): Set<() => void> {
  let calls = inFlightBySignal.get(shutdown);
  if (calls === undefined) {
    const created = new Set<() => void>();
    inFlightBySignal.set(shutdown, (calls = created));
    shutdown.addEventListener('abort', () => created.forEach((abort) => abort()), { once: true });
  }
  return calls;
}

/**
 * The request's one message, refused as connect refuses it (same code, same words): too big
 * as soon as its length is known, compressed without an encoding, incomplete, missing, more
 * than one, or not parsable.
 */
function readMessage<I extends DescMessage>(req: http2.ServerHttp2Stream, schema: I, readMaxBytes: number): Promise<MessageShape<I>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let checked = false;
    const fail = (error: ConnectError) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
      if (!checked && received >= ENVELOPE_HEADER_BYTES) {
        checked = true;
        const length = (chunks.length === 1 ? chunk : Buffer.concat(chunks)).readUInt32BE(1);
        if (length > readMaxBytes) fail(new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
      }
    };
    const onEnd = () => {
      req.off('error', onError);
      try {
        resolve(parseOne(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), schema));
      } catch (error) {
        // parseOne throws ConnectErrors only.
        reject(ConnectError.from(error));
      }
    };
    // A stream reset before its body ended: the call's signal says why; nobody reads this answer.
    const onError = (error: Error) => fail(new ConnectError(error.message, Code.Canceled));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}

function parseOne<I extends DescMessage>(body: Buffer | undefined, schema: I): MessageShape<I> {
  const first = envelopeAt(body, 0);
  if (first === undefined) throw new ConnectError('protocol error: missing input message for unary method', Code.Unimplemented);
  const message = parse(schema, first);
  const second = envelopeAt(body, first.end);
  // connect parses a second message before it notices there is one too many.
  if (second !== undefined) {
    parse(schema, second);
    throw new ConnectError('protocol error: received extra input message for unary method', Code.Unimplemented);
  }
  return message;
}

function parse<I extends DescMessage>(schema: I, envelope: { flags: number; data: Uint8Array }): MessageShape<I> {
  if ((envelope.flags & COMPRESSED_FLAG) === COMPRESSED_FLAG) throw new ConnectError('received compressed envelope, but do not know how to decompress', Code.Internal);
  try {
    return fromBinary(schema, envelope.data);
  } catch (error) {
    throw new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.Internal);
  }
}

/** The envelope starting at `offset`, undefined at the body's end; an envelope cut short is a protocol error. */
function envelopeAt(body: Buffer | undefined, offset: number): { flags: number; data: Uint8Array; end: number } | undefined {
  const size = body?.byteLength ?? 0;
  if (body === undefined || offset === size) return undefined;
  if (size - offset < ENVELOPE_HEADER_BYTES) throw new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument);
  const length = body.readUInt32BE(offset + 1);
  const end = offset + ENVELOPE_HEADER_BYTES + length;
  if (end > size) throw new ConnectError('protocol error: incomplete envelope', Code.InvalidArgument);
  return { flags: body[offset]!, data: body.subarray(offset + ENVELOPE_HEADER_BYTES, end), end };
}

function envelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + data.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(data.byteLength, 1);
  frame.set(data, ENVELOPE_HEADER_BYTES);
  return frame;
}

/** What connect's compressionNegotiate picks for the response when the request is not compressed. */
function responseCompression(accepted: string | null): Compression | undefined {
  if (accepted === null || accepted === '') return undefined;
  for (const name of accepted.split(',')) {
    const found = ACCEPT_COMPRESSION.find((compression) => compression.name === name.trim());
    if (found !== undefined) return found;
  }
  return undefined;
}

const single = (value: string | string[] | undefined): string | null => (value === undefined ? null : Array.isArray(value) ? value.join(', ') : value);

/**
 * One call as the interceptors and the implementation see it (a UnaryRequest). Headers objects
 * cost microseconds each and the hot methods never read the request's nor write trailers, so
 * those are built the first time anyone asks. The interceptors pass the request on as they
 * receive it (none spreads it into a new object), so the implementation finds this call.
 */
class FastCall {
  readonly stream = false;
  readonly requestMethod = 'POST';
  private requestHeaders: Headers | undefined;
  private readonly deadline: number | undefined;
  responseHeaders: Headers | undefined;
  responseTrailers: Headers | undefined;

  constructor(
    private readonly headers: http2.IncomingHttpHeaders,
    readonly method: DescMethodUnary,
    readonly signal: AbortSignal,
    readonly contextValues: ContextValues,
    readonly message: unknown,
    timeoutMs: number | undefined,
  ) {
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  }

  get service() {
    return this.method.parent;
  }

  get url(): string {
    return this.headers[':path'] ?? '';
  }

  get header(): Headers {
    return (this.requestHeaders ??= toHeaders(this.headers));
  }

  /**
   * The HandlerContext connect would give the implementation of a unary gRPC call: this same
   * object, which already holds most of it (one allocation a call instead of two).
   */
  handlerContext(): HandlerContext {
    return this;
  }

  readonly protocolName = 'grpc';

  get values(): ContextValues {
    return this.contextValues;
  }

  get requestHeader(): Headers {
    return this.header;
  }

  get responseHeader(): Headers {
    return (this.responseHeaders ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.responseTrailers ??= new Headers());
  }

  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline - Date.now();
  }
}

/** The implementation's answer as the interceptors see it (a UnaryResponse), sharing the call's header lists. */
class FastResponse {
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
    return (this.call.responseHeaders ??= new Headers());
  }

  get trailer(): Headers {
    return (this.call.responseTrailers ??= new Headers());
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
