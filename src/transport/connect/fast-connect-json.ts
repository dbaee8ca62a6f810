import type http2 from 'node:http2';
import type { JsonReadOptions, JsonWriteOptions } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryRequest } from '@connectrpc/connect';
import { createMethodSerializationLookup, mergeNonProtocolHeaders, readAllBytes, type Compression } from '@connectrpc/connect/protocol';
import { codeToHttpStatus, errorToJsonBytes, trailerMux } from '@connectrpc/connect/protocol-connect';
import { callSignal, FastCall, FastResponse, single, type FastRoute, type FastServeOptions } from './fast-call.js';
import { COMPRESS_MIN_BYTES } from './fast-grpc.js';

type JsonOptions = Partial<JsonReadOptions & JsonWriteOptions>;
type Serialization = ReturnType<typeof createMethodSerializationLookup>;

/** connect's default writeMaxBytes: no limit on what the server writes. */
const WRITE_MAX_BYTES = 0xffffffff;

/** The JSON (de)serializer connect builds for a method, with the same options. */
export function connectJsonSerialization(route: FastRoute, jsonOptions: JsonOptions, readMaxBytes: number): Serialization {
  return createMethodSerializationLookup(route.method, undefined, jsonOptions, { readMaxBytes, writeMaxBytes: WRITE_MAX_BYTES });
}

/**
 * A Connect unary call in JSON (POST, application/json, request not compressed) on the fast
 * path, answered as connect's own unary handler answers it: the body read with connect's
 * readAllBytes (Content-Length and readMaxBytes checked with its words), parsed and written
 * by connect's serializers, errors as connect's JSON with the HTTP status of their code, the
 * response's trailers as `trailer-` headers.
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
  const contextValues = options.contextValues({ socket: stream.session?.socket ?? {}, headers });
  const call = callSignal(stream, options.shutdownSignal, timeoutMs);
  const responseHeader = new Headers({ 'content-type': 'application/json' });
  let responseTrailer: Headers | undefined;
  let status = 200;
  let body: Uint8Array;
  try {
    // Not destroyed when connect stops reading early (a body over the limit): the answer still goes out on it.
    const bytes = await readAllBytes(stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>, options.readMaxBytes, single(headers['content-length']));
    const input = serialization.getI(false).parse(bytes);
    const response = await route.invoke(new FastCall(headers, route.method, call.signal, contextValues, input, timeoutMs, 'connect') as unknown as UnaryRequest);
    body = serialization.getO(false).serialize(response.message);
    response.header.forEach((value, key) => responseHeader.set(key, value));
    responseTrailer = response instanceof FastResponse ? response.trailerIfAny : response.trailer;
  } catch (caught) {
    const error = caught instanceof ConnectError ? caught : new ConnectError('internal error', Code.Internal, undefined, undefined, caught);
    call.abort(error);
    status = codeToHttpStatus(error.code);
    if (!error.isWireError) mergeNonProtocolHeaders(responseHeader, error.metadata);
    body = errorToJsonBytes(error, options.jsonOptions);
  } finally {
    call.release();
  }
  if (compression !== undefined && body.byteLength >= COMPRESS_MIN_BYTES) {
    body = await compression.compress(body);
    responseHeader.set('content-encoding', compression.name);
  }
  const muxed = trailerMux(responseHeader, responseTrailer ?? new Headers());
  muxed.set('content-length', String(body.byteLength));
  if (stream.closed || stream.headersSent) return;
  const out: http2.OutgoingHttpHeaders = { ':status': status };
  muxed.forEach((value, key) => (out[key] = value));
  stream.respond(out);
  stream.end(body);
}
