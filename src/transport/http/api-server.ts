import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiServerResponse } from './api-server-response.js';
import { listen } from './listen.js';

/** The API's handler for every stream the fast path leaves: Connect's adapter. */
type NodeHandlerFn = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
/** Answers a stream itself and returns true, or returns false having touched nothing. */
type StreamFastPath = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

/**
 * A connection idle this long has had no frame in either direction, so no unary call on it is
 * still being answered (REQUEST_TIMEOUT_SECONDS is far shorter than the idle timeout): the
 * grace only lets the GOAWAY reach the client before the socket goes.
 */
const IDLE_CLOSE_GRACE_MS = 5_000;
/** Time for an answer to leave once the call has been answered at the request timeout. */
const ANSWER_GRACE_MS = 5_000;

export interface ApiServerOptions {
  readonly handler: NodeHandlerFn;
  /**
   * Tried first on every stream within the limits, before Node's compatibility request and
   * response objects exist for it (building them costs a unary call a fifth of its time).
   */
  readonly fastPath?: StreamFastPath;
  readonly maxConcurrentStreams: number;
  /** The largest header list a stream may carry (RFC 9113 counting: name + value + 32 per field). */
  readonly maxHeaderBytes: number;
  /** HTTP/2 connections at once; past it new ones are closed as they are accepted. */
  readonly maxConnections: number;
  /** A connection that has not sent its HTTP/2 preface (magic and SETTINGS) by then is destroyed. */
  readonly prefaceTimeoutMs: number;
  /** A connection without traffic for this long gets GOAWAY... */
  readonly idleTimeoutMs: number;
  /** ...and is destroyed this much later, with whatever streams it still holds (default 5 s). */
  readonly idleCloseGraceMs?: number;
  /**
   * A stream whose request is not read to its end within this time is reset; so is one whose
   * answer has still not gone out `answerGraceMs` later (a client that never reads it holds the
   * stream, and its place under `maxOpenStreams`, for ever), unless it is long-lived.
   */
  readonly requestTimeoutMs: number;
  /** Default 5 s: the call itself is answered at the request timeout (deadline interceptor). */
  readonly answerGraceMs?: number;
  /** Streams that legitimately outlive the request timeout (Health/Watch, which has its own lifetime). */
  readonly isLongLived?: (req: http2.Http2ServerRequest) => boolean;
  /**
   * Streams open at once over all connections; past it new ones are refused (REFUSED_STREAM,
   * which clients may retry). Each costs tens of KB of heap, so `maxConcurrentStreams` per
   * connection times `maxConnections` is far more than the heap holds.
   */
  readonly maxOpenStreams: number;
  /**
   * Runs first on every stream; returns true when it has answered the stream itself (a refusal
   * that must stay cheaper than a call), and the handler is not called.
   */
  readonly answeredEarly?: (req: http2.Http2ServerRequest) => boolean;
  /** Told of each connection and stream refused at these limits (a metric: a flood must not be a flood of log lines). */
  readonly onRefused?: (kind: 'connection' | 'stream') => void;
  /**
   * HTTP/2 over TLS (ALPN h2, no HTTP/1.1, no cleartext) instead of h2c: the certificate and
   * key, and for mutual TLS the client CA with `requestCert` and `rejectUnauthorized`.
   * Replaced on a running server with setSecureContext().
   */
  readonly tls?: TlsOptions;
}

/** What a TLS listener is made of (PEM contents, not file names). */
export interface TlsOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Client certificates must chain to this CA (mutual TLS). */
  readonly clientCa?: Buffer | undefined;
}

/**
 * The h2c server for gRPC, gRPC-Web and Connect. It bounds what a client can hold: connections
 * (`maxConnections`), connections that never speak HTTP/2, idle connections and their streams,
 * requests that are never finished, header lists. It tracks its sessions so that close() can
 * stop new connections, send GOAWAY (no new streams; in-flight ones finish) and, after the
 * grace period, cut what is left.
 */
export class ApiServer {
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private openStreams = 0;
  /** Open streams under the request timeout (see bound). */
  private readonly timed = new Map<http2.ServerHttp2Stream, TimedStream>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: ApiServerOptions) {
    // No 'request' listener: Node would build compatibility objects for every stream. The
    // streams are taken as they come, and those objects built here for the ones Connect serves.
    const common = {
      settings: { maxConcurrentStreams: options.maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes },
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    };
    this.server =
      options.tls === undefined
        ? http2.createServer(common)
        : http2.createSecureServer(
            // A handshake gets the preface's time: a socket that never finishes one holds a connection.
            { ...common, ...secureContextOptions(options.tls), allowHTTP1: false, ALPNProtocols: ['h2'], handshakeTimeout: options.prefaceTimeoutMs },
          );
    this.server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => this.handle(stream, headers, rawHeaders));
    // Node's own limit: past it, net.Server closes each new socket as it is accepted, before
    // any HTTP/2 state exists for it, while established sessions carry on.
    this.server.maxConnections = options.maxConnections;
    this.server.on('drop', () => options.onRefused?.('connection'));
    this.server.on('session', (session) => this.track(session));
  }

  /** True when this server speaks TLS (options.tls). */
  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  /**
   * New certificate, key and client CA for connections accepted from now on (established ones
   * keep theirs): a rotation needs no restart. Throws when the PEM is unusable (the old context stays).
   */
  setSecureContext(tls: TlsOptions): void {
    if (!('setSecureContext' in this.server)) throw new Error('this server does not use TLS');
    this.server.setSecureContext(secureContextOptions(tls));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return listen(this.server, port, host);
  }

  /** Refuses new connections and streams; waits up to `graceMs` for in-flight calls, then cuts them. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.close();
    const drained = await Promise.race([closed.then(() => true), sleep(graceMs).then(() => false)]);
    if (drained) return;
    for (const session of this.sessions) session.destroy();
    await closed;
  }

  private track(session: http2.ServerHttp2Session): void {
    const { prefaceTimeoutMs, idleTimeoutMs, idleCloseGraceMs = IDLE_CLOSE_GRACE_MS } = this.options;
    this.sessions.add(session);
    // A socket that never speaks HTTP/2 still costs a session: it gets a short time to do so.
    const preface = setTimeout(() => session.destroy(), prefaceTimeoutMs).unref();
    session.once('remoteSettings', () => clearTimeout(preface));
    // close() alone lets open streams (a Watch, a request never finished) keep the connection
    // for ever; after the grace they go with it.
    let destroyLater: NodeJS.Timeout | undefined;
    session.setTimeout(idleTimeoutMs, () => {
      session.close();
      destroyLater ??= setTimeout(() => session.destroy(), idleCloseGraceMs).unref();
    });
    session.once('close', () => {
      clearTimeout(preface);
      clearTimeout(destroyLater);
      this.sessions.delete(session);
    });
  }

  /**
   * The request timeout counts from the stream's opening, but Connect starts a call only once
   * its body is read: a stream whose body never ends would never get an answer, so it is reset.
   * A call that was read is answered by the deadline interceptor at the same moment; if that
   * answer has not left `answerGraceMs` later (flow control: the client reads nothing), the
   * stream is reset too. One sweep checks every open stream a few times per timeout instead of
   * a timer per stream: these are bounds on hostile clients, and a timer and its listener on
   * every call were measurable on the hot path (issue 16).
   */
  private bound(stream: http2.ServerHttp2Stream, requestRead: () => boolean, longLived: boolean): void {
    this.timed.set(stream, { openedAt: performance.now(), requestRead, longLived, answerBy: undefined });
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(1, Math.min(SWEEP_MAX_MS, this.options.requestTimeoutMs / 8))).unref();
  }

  private sweep(): void {
    const { requestTimeoutMs, answerGraceMs = ANSWER_GRACE_MS } = this.options;
    const now = performance.now();
    for (const [stream, timed] of this.timed) {
      if (timed.answerBy === undefined) {
        if (now - timed.openedAt < requestTimeoutMs) continue;
        if (!timed.requestRead()) this.reset(stream);
        else if (timed.longLived) this.timed.delete(stream);
        else timed.answerBy = now + answerGraceMs;
      } else if (now >= timed.answerBy) this.reset(stream);
    }
    if (this.timed.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private reset(stream: http2.ServerHttp2Stream): void {
    this.timed.delete(stream);
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void {
    // Streams reset by their client report it as an error; the calls on them see it as their
    // signal aborting. Unheard, the error would end the process.
    stream.on('error', ignore);
    // The SETTINGS limit binds only once the client has acknowledged it, and nghttp2 enforces
    // it no further: a client that sends at once got a 60 KB header list through. Refused here
    // before any handler sees it, with the status HTTP has for it.
    if (headerListOver(rawHeaders, this.options.maxHeaderBytes)) {
      stream.respond({ ':status': 431, 'content-length': '0' }, { endStream: true });
      return;
    }
    if (this.openStreams >= this.options.maxOpenStreams) {
      this.options.onRefused?.('stream');
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    this.openStreams += 1;
    // on, not once: a stream closes once, and once() wraps the listener on every stream.
    stream.on('close', () => {
      this.openStreams -= 1;
      this.timed.delete(stream);
    });
    if (this.options.fastPath?.(stream, headers) === true) {
      this.bound(stream, () => stream.readableEnded, false);
      return;
    }
    const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new ApiServerResponse(stream);
    if (this.options.answeredEarly?.(req) === true) return;
    this.bound(stream, () => req.readableEnded, this.options.isLongLived?.(req) === true);
    // What Node's own 'request' dispatch does before a handler sees the request.
    if (headers[':method'] === 'CONNECT') {
      res.statusCode = http2.constants.HTTP_STATUS_METHOD_NOT_ALLOWED;
      res.end();
      return;
    }
    if (headers.expect !== undefined) {
      if (headers.expect !== '100-continue') {
        res.statusCode = http2.constants.HTTP_STATUS_EXPECTATION_FAILED;
        res.end();
        return;
      }
      res.writeContinue();
    }
    this.options.handler(req, res);
  }
}

const ignore = () => undefined;

/** The longest gap between two checks of the open streams' request timeouts. */
const SWEEP_MAX_MS = 250;

interface TimedStream {
  readonly openedAt: number;
  readonly requestRead: () => boolean;
  readonly longLived: boolean;
  /** Set once the request was read at the timeout: the answer must have left by then. */
  answerBy: number | undefined;
}

function secureContextOptions(tls: TlsOptions) {
  if (tls.clientCa === undefined) return { cert: tls.cert, key: tls.key };
  return { cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: true };
}

/**
 * Whether a header list is over `maxBytes` as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113,
 * section 6.5.2): name and value octets plus 32 per field. rawHeaders alternates names and values,
 * so 16 each.
 */
function headerListOver(rawHeaders: readonly string[], maxBytes: number): boolean {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most lists are far below the limit by that bound
  // alone, without a byte count per header on every stream.
  let units = 0;
  for (const item of rawHeaders) units += item.length;
  if (3 * units + 16 * rawHeaders.length <= maxBytes) return false;
  let bytes = 0;
  for (const item of rawHeaders) bytes += Buffer.byteLength(item) + 16;
  return bytes > maxBytes;
}
