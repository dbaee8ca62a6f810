import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ApiServerResponse } from './api-server-response.js';
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
        Http2ServerResponse: ApiServerResponse,
      },
      options.handler,
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

