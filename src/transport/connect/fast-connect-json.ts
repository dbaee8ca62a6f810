import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { JsonReadOptions, JsonWriteOptions } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryRequest } from '@connectrpc/connect';
import { createMethodSerializationLookup, mergeNonProtocolHeaders, type Compression } from '@connectrpc/connect/protocol';
import { codeToHttpStatus, errorToJsonBytes } from '@connectrpc/connect/protocol-connect';
import { asFailure, callSignal, FastCall, fastCallValues, FastResponse, readRequestBody, remainingMs, single, type FastRoute, type FastServeOptions } from './fast-call.js';
import { COMPRESS_MIN_BYTES } from './fast-grpc.js';
import { encodedOnce } from './frozen-answers.js';
import { answerDirectly, type DirectAnswer } from './direct-answer.js';

type JsonOptions = Partial<JsonReadOptions & JsonWriteOptions>;
type Serialization = ReturnType<typeof createMethodSerializationLookup>;

/** connect's default writeMaxBytes: no limit on what the server writes. */
const WRITE_MAX_BYTES = 0xffffffff;

/** The JSON (de)serializer connect builds for a method, with the same options. */
export function connectJsonSerialization(route: FastRoute, jsonOptions: JsonOptions, readMaxBytes: number): Serialization {
  const lookup = createMethodSerializationLookup(route.method, undefined, jsonOptions, { readMaxBytes, writeMaxBytes: WRITE_MAX_BYTES });
  // A frozen answer is serialized once (see encodedOnce).
  const output = lookup.getO(false);
  const json = { parse: (data: Uint8Array) => output.parse(data), serialize: encodedOnce((message) => output.serialize(message as never)) };
  return { getI: (binary) => lookup.getI(binary), getO: (binary) => (binary ? lookup.getO(true) : json) };
}

/**
 * A Connect unary call in JSON (POST, application/json, request not compressed) on the fast
 * path, answered as connect's own unary handler answers it: the body read and checked as
 * connect's readAllBytes checks it (Content-Length and readMaxBytes, with its words), parsed
 * and written by connect's serializers, errors as connect's JSON with the HTTP status of their
 * code, the response's trailers as `trailer-` headers. A successful answer's headers are a
 * plain object: the three Headers objects connect builds for it were a tenth of the call.
 */
export async function serveConnectJson(
  route: FastRoute,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: FastServeOptions & { readonly jsonOptions: JsonOptions },
  serialization: Serialization,
  timeoutMs: number | undefined,
  compression: Compression | undefined,
): Promise<void> {
  const openedAt = performance.now();
  const out: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': 'application/json' };
  let body: Uint8Array;
  try {
    const input = route.fromMessage(serialization.getI(false).parse(await readBody(stream, options.readMaxBytes, single(headers['content-length']))));
    const call = { stream, headers, input, openedAt, timeoutMs };
    const direct = await new Promise<DirectAnswer | undefined>((resolve) => {
      if (!answerDirectly(route, call, options, resolve)) resolve(undefined);
    });
    if (direct?.error !== undefined) throw direct.error;
    if (direct !== undefined) {
      if (direct.requestId !== undefined) out['x-request-id'] = direct.requestId;
      body = serialization.getO(false).serialize(direct.message as never);
    } else body = await serveThroughInterceptors(route, stream, headers, options, serialization, { input, openedAt, timeoutMs, out });
  } catch (caught) {
    body = errorAnswer(asFailure(caught), out, options.jsonOptions);
  }
  if (compression !== undefined && body.byteLength >= COMPRESS_MIN_BYTES) {
    body = await compression.compress(body);
    out['content-encoding'] = compression.name;
  }
  out['content-length'] = String(body.byteLength);
  if (stream.closed || stream.headersSent) return;
  stream.respond(out);
  stream.end(body);
}

/** The answer's body through the interceptors, its headers and trailers (as `trailer-` headers) put in `out`. */
async function serveThroughInterceptors(
  route: FastRoute,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: FastServeOptions,
  serialization: Serialization,
  call: { input: unknown; openedAt: number; timeoutMs: number | undefined; out: http2.OutgoingHttpHeaders },
): Promise<Uint8Array> {
  const timeoutMs = remainingMs(call.timeoutMs, call.openedAt);
  const signal = callSignal(stream, options.shutdownSignal, timeoutMs);
  try {
    const values = fastCallValues(options, stream, headers, call.openedAt);
    const response = await route.invoke(new FastCall(headers, route.method, signal.signal, values, call.input) as unknown as UnaryRequest);
    const body = serialization.getO(false).serialize(response.message);
    response.header.forEach((value, key) => (call.out[key] = value));
    const trailer = response instanceof FastResponse ? response.trailerIfAny : response.trailer;
    trailer?.forEach((value, key) => (call.out[`trailer-${key}`] = value));
    return body;
  } catch (caught) {
    signal.abort(asFailure(caught));
    throw caught;
  } finally {
    signal.release();
  }
}

/** connect's JSON error body, the HTTP status of its code and its metadata as headers put in `out`. */
function errorAnswer(error: ConnectError, out: http2.OutgoingHttpHeaders, jsonOptions: JsonOptions): Uint8Array {
  const errorHeader = new Headers({ 'content-type': 'application/json' });
  if (!error.isWireError) mergeNonProtocolHeaders(errorHeader, error.metadata);
  out[':status'] = codeToHttpStatus(error.code);
  errorHeader.forEach((value, key) => (out[key] = value));
  return errorToJsonBytes(error, jsonOptions);
}

/**
 * The request body, refused as connect's readAllBytes refuses it (same codes, same words): a
 * Content-Length over the limit before a byte is read, more or fewer bytes than it promised,
 * or, without one, more than the limit. A body refused part way is left unread and paused, as
 * connect's reader leaves it (not destroyed): the answer still goes out on the stream.
 */
async function readBody(stream: http2.ServerHttp2Stream, readMaxBytes: number, lengthHint: string | null): Promise<Uint8Array> {
  const parsed = lengthHint === null ? Number.NaN : Number.parseInt(lengthHint, 10);
  const hint = Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : undefined;
  if (hint !== undefined && hint > readMaxBytes) throw new ConnectError(`message size ${hint} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
  const refusal = (received: number): ConnectError | undefined => {
    if (hint !== undefined) return received > hint ? promised(hint, received) : undefined;
    return received > readMaxBytes ? new ConnectError(`message size is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted) : undefined;
  };
  const body = await new Promise<Buffer>((resolve, reject) =>
    readRequestBody(
      stream,
      (_chunks, received) => {
        const refused = refusal(received);
        if (refused !== undefined) stream.pause();
        return refused;
      },
      (error, read) => (error === undefined ? resolve(read!) : reject(error)),
    ),
  );
  if (hint !== undefined && body.byteLength < hint) throw promised(hint, body.byteLength);
  return body;
}

const promised = (hint: number, received: number) => new ConnectError(`protocol error: promised ${hint} bytes, received ${received}`, Code.InvalidArgument);
