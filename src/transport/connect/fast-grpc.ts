import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { compressionGzip, compressionBrotli } from '@connectrpc/connect-node';
import type { Compression } from '@connectrpc/connect/protocol';
import { contentTypeProto, setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import { respecGrpcMessage } from '../http/grpc-status-message.js';
import { asFailure, callSignal, FastCall, fastCallValues, FastResponse, readRequestBody, remainingMs, type FastRoute, type FastServeOptions } from './fast-call.js';
import { answerDirectly, type DirectAnswer } from './direct-answer.js';

/** connect-node's defaults, in its order: what a response may be compressed with. */
const ACCEPT_COMPRESSION: readonly Compression[] = [compressionGzip, compressionBrotli];
/** connect's default compressMinBytes: smaller messages go out uncompressed even when negotiated. */
export const COMPRESS_MIN_BYTES = 1024;
const COMPRESSED_FLAG = 0b0000_0001;
const ENVELOPE_HEADER_BYTES = 5;

/**
 * A unary gRPC call (application/grpc, uncompressed request) on the fast path: read, answer
 * directly or through the interceptors, as connect would. An answer known at once goes out
 * from the stream's 'end' event itself, with no promise in between.
 */
export function serveGrpc(
  route: FastRoute,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: FastServeOptions,
  timeoutMs: number | undefined,
  compression: Compression | undefined,
): void {
  const openedAt = performance.now();
  const responseHeaders: Record<string, string> = { 'content-type': contentTypeProto };
  if (compression !== undefined) responseHeaders['grpc-encoding'] = compression.name;
  readMessage(stream, route.decode, options.readMaxBytes, (error, input) => {
    if (error !== undefined) return respondError(stream, responseHeaders, error);
    const send = (answer: DirectAnswer) => {
      try {
        if (answer.error !== undefined) return respondError(stream, responseHeaders, answer.error);
        if (answer.requestId !== undefined) responseHeaders['x-request-id'] = answer.requestId;
        respondMessage(stream, route, responseHeaders, GRPC_OK, answer.message, compression);
      } catch (thrown) {
        // In a stream's event or a promise's callback, a throw would end the process: a bug here is an INTERNAL answer instead.
        respondError(stream, responseHeaders, asFailure(thrown));
      }
    };
    const call = { stream, headers, input, openedAt, timeoutMs };
    if (!answerDirectly(route, call, options, send)) void serveThroughInterceptors(route, stream, headers, options, { ...call, responseHeaders, compression });
  });
}

const GRPC_OK: Readonly<Record<string, string>> = { 'grpc-status': '0' };

async function serveThroughInterceptors(
  route: FastRoute,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: FastServeOptions,
  call: { input: unknown; openedAt: number; timeoutMs: number | undefined; responseHeaders: Record<string, string>; compression: Compression | undefined },
): Promise<void> {
  const timeoutMs = remainingMs(call.timeoutMs, call.openedAt);
  const signal = callSignal(stream, options.shutdownSignal, timeoutMs);
  try {
    let response: UnaryResponse;
    try {
      const values = fastCallValues(options, stream, headers, call.openedAt);
      response = await route.invoke(new FastCall(headers, route.method, signal.signal, values, call.input) as unknown as UnaryRequest);
    } catch (error) {
      throw ConnectError.from(error);
    }
    response.header.forEach((value, key) => (call.responseHeaders[key] ??= value));
    const trailers: Record<string, string> = { 'grpc-status': '0' };
    const trailer = response instanceof FastResponse ? response.trailerIfAny : response.trailer;
    trailer?.forEach((value, key) => (trailers[key] = value));
    respondMessage(stream, route, call.responseHeaders, trailers, response.message, call.compression);
  } catch (error) {
    const failure = asFailure(error);
    signal.abort(failure);
    respondError(stream, call.responseHeaders, failure);
  } finally {
    signal.release();
  }
}

/** A successful answer: the message in its envelope, compressed when negotiated and large enough. */
function respondMessage(stream: http2.ServerHttp2Stream, route: FastRoute, headers: Record<string, string>, trailers: Readonly<Record<string, string>>, message: object, compression: Compression | undefined): void {
  const data = route.encode(message);
  if (compression === undefined || data.byteLength < COMPRESS_MIN_BYTES) return respond(stream, headers, trailers, envelope(0, data));
  compression.compress(data).then(
    (compressed) => respond(stream, headers, trailers, envelope(COMPRESSED_FLAG, compressed)),
    (error: unknown) => respondError(stream, headers, asFailure(error)),
  );
}

/** A failed call: no message, its status in the trailers as connect's setTrailerStatus writes it. */
function respondError(stream: http2.ServerHttp2Stream, headers: Record<string, string>, failure: ConnectError): void {
  const trailers: Record<string, string> = {};
  setTrailerStatus(new Headers(), failure).forEach((value, key) => (trailers[key] = value));
  // As ApiServerResponse does for Connect: the message in the spec's percent-encoding.
  if (trailers['grpc-message'] !== undefined) trailers['grpc-message'] = respecGrpcMessage(trailers['grpc-message']);
  respond(stream, headers, trailers, undefined);
}

/**
 * The answer as Node's compatibility response sends it for Connect: headers, the message if
 * any, then the trailers. A call answered before its request was read to the end (a message
 * over the size limit) then gets RST_STREAM NO_ERROR, as ApiServerResponse does, so a client
 * still uploading stops instead of waiting for flow-control credit.
 */
function respond(stream: http2.ServerHttp2Stream, headers: Record<string, string>, trailers: Readonly<Record<string, string>>, body: Buffer | undefined): void {
  if (stream.closed || stream.headersSent) return;
  stream.respond({ ':status': 200, ...headers }, { waitForTrailers: true });
  // on, not once: a stream wants its trailers once, and once() wraps the listener on every call.
  stream.on('wantTrailers', () => {
    stream.sendTrailers(trailers);
    if (!stream.readableEnded) setImmediate(endUnread, stream);
  });
  stream.end(body);
}

function endUnread(stream: http2.ServerHttp2Stream): void {
  if (!stream.readableEnded && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * The request's one message, refused as connect refuses it (same code, same words): too big
 * as soon as its length is known, compressed without an encoding, incomplete, missing, more
 * than one, or not parsable.
 */
function readMessage(stream: http2.ServerHttp2Stream, decode: (bytes: Uint8Array) => unknown, readMaxBytes: number, done: (error: ConnectError | undefined, input?: unknown) => void): void {
  let checked = false;
  const admit = (chunks: readonly Buffer[], received: number) => {
    if (checked || received < ENVELOPE_HEADER_BYTES) return undefined;
    checked = true;
    const length = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).readUInt32BE(1);
    return length > readMaxBytes ? new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted) : undefined;
  };
  readRequestBody(stream, admit, (error, body) => {
    if (error !== undefined) return done(error);
    let input: unknown;
    try {
      input = parseOne(body, decode);
    } catch (parseError) {
      // parseOne throws ConnectErrors only.
      return done(parseError as ConnectError);
    }
    done(undefined, input);
  });
}

function parseOne(body: Buffer | undefined, decode: (bytes: Uint8Array) => unknown): unknown {
  const first = envelopeAt(body, 0);
  if (first === undefined) throw new ConnectError('protocol error: missing input message for unary method', Code.Unimplemented);
  const message = parse(decode, first);
  const second = envelopeAt(body, first.end);
  // connect parses a second message before it notices there is one too many.
  if (second !== undefined) {
    parse(decode, second);
    throw new ConnectError('protocol error: received extra input message for unary method', Code.Unimplemented);
  }
  return message;
}

function parse(decode: (bytes: Uint8Array) => unknown, envelope: { flags: number; data: Uint8Array }): unknown {
  if ((envelope.flags & COMPRESSED_FLAG) === COMPRESSED_FLAG) throw new ConnectError('received compressed envelope, but do not know how to decompress', Code.Internal);
  try {
    return decode(envelope.data);
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
export function responseCompression(accepted: string | null): Compression | undefined {
  if (accepted === null || accepted === '') return undefined;
  for (const name of accepted.split(',')) {
    const found = ACCEPT_COMPRESSION.find((compression) => compression.name === name.trim());
    if (found !== undefined) return found;
  }
  return undefined;
}
