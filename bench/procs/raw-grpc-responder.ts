/**
 * Baseline for the hot path: Node's own http2 server answering by hand, with no RPC framework.
 * For gRPC it reads the request to its end, sends one constant message in its 5-byte envelope
 * and the grpc-status trailer; for a Connect unary JSON request (content-type
 * application/json) it sends a constant JSON body. Nothing on this stack can answer a unary
 * call for less, so it is the ceiling the service's Check and VerifyToken are held to. The
 * same HTTP/2 settings as the service's API port.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { serveParent } from '../lib/child-server.js';

const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const TRAILERS = { 'grpc-status': '0' };
const JSON_HEADERS = { ':status': 200, 'content-type': 'application/json' };

let server: http2.Http2Server | undefined;

serveParent({
  /**
   * Listens on a free port of 127.0.0.1 and answers every gRPC call with `answer` (base64 of
   * the framed message) and every JSON request with `json`.
   */
  listen: ({ answer, json = '{}' }: { answer: string; json?: string }) =>
    new Promise((resolve, reject) => {
      const frame = Buffer.from(answer, 'base64');
      const jsonBody = Buffer.from(json);
      server = http2.createServer({ settings: { maxConcurrentStreams: 100, maxHeaderListSize: 16_384 } });
      server.on('stream', (stream, headers) => {
        stream.on('error', () => undefined);
        // Read the request to its end, as any server must before it has the message.
        stream.on('data', () => undefined);
        const isJson = headers['content-type'] === 'application/json';
        stream.once('end', () => {
          if (stream.destroyed) return;
          if (isJson) {
            stream.respond(JSON_HEADERS);
            stream.end(jsonBody);
            return;
          }
          stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
          stream.once('wantTrailers', () => stream.sendTrailers(TRAILERS));
          stream.end(frame);
        });
      });
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server!.address() as AddressInfo).port));
    }),
});
