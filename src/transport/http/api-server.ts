import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { GrpcServerResponse } from './grpc-status-message.js';
import { listen } from './listen.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { connectNodeAdapter } from '@connectrpc/connect-node';

type NodeHandlerFn = ReturnType<typeof connectNodeAdapter>;

export interface ApiServerOptions {
  readonly handler: NodeHandlerFn;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderBytes: number;
  readonly idleTimeoutMs: number;
}

/**
 * The h2c server for gRPC, gRPC-Web and Connect. It tracks its sessions so that close()
 * can stop new connections, send GOAWAY (no new streams; in-flight ones finish) and, after
 * the grace period, cut what is left.
 */
export class ApiServer {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(options: ApiServerOptions) {
    this.server = http2.createServer(
      {
        settings: { maxConcurrentStreams: options.maxConcurrentStreams, maxHeaderListSize: options.maxHeaderBytes },
        maxSessionInvalidFrames: 100,
        maxSessionRejectedStreams: 100,
        Http2ServerResponse: GrpcServerResponse,
      },
      (req, res) => {
        // Node's compatibility layer asks for trailers once the response is complete.
        req.stream.once('wantTrailers', () => {
          if (!req.readableEnded) setImmediate(endUnreadRequest, req);
        });
        options.handler(req, res);
      },
    );
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.setTimeout(options.idleTimeoutMs, () => session.close());
      session.once('close', () => this.sessions.delete(session));
    });
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
}

/**
 * A call can be answered before its request is read to the end (a message over the size
 * limit, an error found in the first frame). Node then leaves the stream open (its writable
 * side never reports finished), and a client still uploading waits forever for flow-control
 * credit. RST_STREAM with NO_ERROR after a complete response tells it to stop sending
 * (RFC 9113, section 8.1) and frees the stream.
 */
function endUnreadRequest(req: http2.Http2ServerRequest): void {
  if (!req.readableEnded && !req.stream.closed) req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
}
