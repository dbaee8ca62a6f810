import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen } from './listen.js';
import type { Registry } from 'prom-client';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';

export interface AdminServerDeps {
  readonly readiness: ReadinessPort;
  readonly registry: Registry;
  /** The published keys' public JWKs. */
  readonly jwks: () => readonly object[];
}

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void;

/** Plain HTTP/1.1 for probes, scrapers and sidecars: /healthz, /readyz, /metrics, the JWKS. */
export class AdminServer {
  private readonly server: http.Server;
  private readonly routes: Readonly<Record<string, Route>>;

  constructor(private readonly deps: AdminServerDeps) {
    this.routes = {
      '/healthz': (_req, res) => send(res, 200, 'application/json', JSON.stringify({ status: 'ok' })),
      '/readyz': async (_req, res) => {
        const report = await deps.readiness.check({ includeOutboxLag: true });
        send(res, report.ready ? 200 : 503, 'application/json', JSON.stringify(report));
      },
      '/metrics': async (_req, res) => send(res, 200, deps.registry.contentType, await deps.registry.metrics()),
      '/.well-known/jwks.json': (req, res) => this.serveJwks(req, res),
    };
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return listen(this.server, port, host);
  }


  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const route = this.routes[path];
    if (route === undefined) return send(res, 404, 'text/plain', 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    try {
      await route(req, res);
    } catch {
      send(res, 500, 'text/plain', 'internal error\n');
    }
  }

  /** Sidecars cache it for up to 5 minutes (under Istio's refresh) and revalidate with the ETag. */
  private serveJwks(req: http.IncomingMessage, res: http.ServerResponse): void {
    const body = JSON.stringify({ keys: this.deps.jwks() });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const headers = { etag, 'cache-control': 'public, max-age=300' };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    send(res, 200, 'application/jwk-set+json', body, headers);
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
