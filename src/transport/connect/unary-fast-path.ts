import type http2 from 'node:http2';
import { create, fromBinary, isMessage, toBinary, type DescMethodUnary, type JsonReadOptions, type JsonWriteOptions } from '@bufbuild/protobuf';
import type { ContextValues, Interceptor, UnaryRequest, UnaryResponse } from '@connectrpc/connect';
import { parseTimeout as parseConnectTimeout } from '@connectrpc/connect/protocol-connect';
import { parseTimeout } from '@connectrpc/connect/protocol-grpc';
import { FastResponse, single, type FastCall, type FastRoute } from './fast-call.js';
import { connectJsonSerialization, serveConnectJson } from './fast-connect-json.js';
import { responseCompression, serveGrpc } from './fast-grpc.js';
import { encodedOnce } from './frozen-answers.js';
import type { CallObserver } from './interceptors/observe.interceptor.js';
import type { RequestIdentity, RequestLike } from './request-context.js';

/**
 * A unary method the fast path answers, with the very implementation Connect's router serves.
 * The implementation takes an input: the request message itself unless `fromMessage` says
 * what it reads of it (Check reads one header).
 */
export interface FastUnaryMethod {
  readonly method: DescMethodUnary;
  /**
   * The implementation. It reads nothing of its call's context (no signal, no values), so the
   * fast path can answer without the interceptors (see direct-answer); a method that needs its
   * context is not a fast method.
   */
  readonly answer: (input: never) => Promise<unknown>;
  /** The answer when it is known without waiting, else undefined having changed nothing (see direct-answer). */
  readonly answerNow?: (input: never) => unknown;
  /** The implementation's input from the request message; the message itself when absent. */
  readonly fromMessage?: (message: never) => unknown;
  /** The input straight from protobuf, when fromBinary and fromMessage would do more than the handler needs. */
  readonly decode?: (bytes: Uint8Array) => unknown;
  /** The answer in protobuf, when the method writes it for less than toBinary (the same bytes). */
  readonly encode?: (message: never) => Uint8Array;
}

export interface UnaryFastPathOptions {
  readonly methods: readonly FastUnaryMethod[];
  /** The same interceptors, in the same order, as the Connect adapter's. */
  readonly interceptors: readonly Interceptor[];
  /** The same observer as the interceptors' observe (callObserver). */
  readonly observer: CallObserver;
  /** The same function as the Connect adapter's `contextValues`... */
  readonly contextValues: (req: RequestLike) => ContextValues;
  /** ...and what it is made of, for calls answered without the interceptors. */
  readonly identity: RequestIdentity;
  /** The same as the deadline interceptor's. */
  readonly requestTimeoutMs: number;
  readonly readMaxBytes: number;
  readonly shutdownSignal: AbortSignal;
  /** The same JSON options as the Connect adapter's (a strict UTF-8 decoder). */
  readonly jsonOptions: Partial<JsonReadOptions & JsonWriteOptions>;
}

/** Answers the stream's call and returns true, or returns false having touched nothing. */
export type FastPathHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

/**
 * Unary gRPC calls to the hot methods (VerifyToken, ext_authz Check) without connect-node's
 * per-call machinery: its async-iterable pipeline and a DOMException for every call cost about
 * 400 µs a call, ten times what the handler itself costs (issue 16). It does only what the
 * common call needs: a plain `application/grpc` POST, uncompressed, one message. Everything
 * else (another protocol, a compressed request, an unparsable grpc-timeout) is left to Connect,
 * decided from the headers alone, before any byte of the body is read.
 *
 * What the caller sees is what Connect would send, byte for byte (tests/e2e/fast-path): the
 * same interceptors run (observe: metrics, logs, x-request-id; error mapping; deadline), or,
 * for an answer known without waiting, what is left of them when nothing waits (see
 * direct-answer),
 * errors are written by connect's own setTrailerStatus, the deadline signal is connect's own,
 * and a body Connect would refuse before the interceptors run is refused here with its
 * message and code, equally before them.
 */
export function unaryFastPath(options: UnaryFastPathOptions): FastPathHandler {
  const routes = new Map<string, FastRoute>();
  for (const spec of options.methods) {
    const { method } = spec;
    const toMessage = (result: unknown): object => (isMessage(result, method.output) ? result : create(method.output, result as never));
    const answer = spec.answer as (input: unknown) => Promise<unknown>;
    const chained = options.interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>(
      (next, interceptor) => interceptor(next as never) as never,
      async (req) => {
        const call = req as unknown as FastCall;
        return new FastResponse(call, toMessage(await answer(req.message))) as unknown as UnaryResponse;
      },
    );
    const fromMessage = (spec.fromMessage ?? ((message: unknown) => message)) as (message: unknown) => unknown;
    const answerNow = spec.answerNow as ((input: unknown) => unknown) | undefined;
    routes.set(`/${method.parent.typeName}/${method.name}`, {
      method,
      invoke: chained,
      decode: spec.decode ?? ((bytes: Uint8Array) => fromMessage(fromBinary(method.input, bytes))),
      fromMessage,
      encode: encodedOnce((spec.encode as ((message: object) => Uint8Array) | undefined) ?? ((message) => toBinary(method.output, message as never))),
      answerNow:
        answerNow &&
        ((input) => {
          const answer = answerNow(input);
          return answer === undefined ? undefined : toMessage(answer);
        }),
      answer: async (input) => toMessage(await answer(input)),
      observation: options.observer(method),
    });
  }

  const jsonSerialization = new Map([...routes.values()].map((route) => [route, connectJsonSerialization(route, options.jsonOptions, options.readMaxBytes)]));

  return (stream, headers) => {
    const route = routes.get(headers[':path'] ?? '');
    if (route === undefined || headers[':method'] !== 'POST') return false;
    const contentType = headers['content-type'];
    if (contentType === 'application/json') return connectJson(route, stream, headers);
    if (contentType !== 'application/grpc' && contentType !== 'application/grpc+proto') return false;
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    const timeout = parseTimeout(single(headers['grpc-timeout']), Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) return false;
    const compression = responseCompression(single(headers['grpc-accept-encoding']));
    serveGrpc(route, stream, headers, options, timeout.timeoutMs, compression);
    return true;
  };

  /** Connect unary JSON: a compressed request or an unparsable connect-timeout-ms goes to Connect. */
  function connectJson(route: FastRoute, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean {
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    const timeout = parseConnectTimeout(single(headers['connect-timeout-ms']), Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) return false;
    const compression = responseCompression(single(headers['accept-encoding']));
    void serveConnectJson(route, stream, headers, options, jsonSerialization.get(route)!, timeout.timeoutMs, compression);
    return true;
  }
}
