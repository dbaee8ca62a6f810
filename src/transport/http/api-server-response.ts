import http2 from 'node:http2';
import { respecGrpcMessage } from './grpc-status-message.js';

const GRPC_MESSAGE = 'grpc-message';

type OutgoingHeaders = http2.OutgoingHttpHeaders | readonly string[];

/**
 * The API server's response class: Node's compatibility response with two repairs that
 * cost nothing on a call that needs neither.
 */
export class ApiServerResponse extends http2.Http2ServerResponse {
  // A trailers-only answer carries grpc-message in its headers, any other in its trailers.
  override writeHead(statusCode: number, headers?: OutgoingHeaders): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: OutgoingHeaders): this;
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    respecHeaders(rest.at(-1));
    return super.writeHead(statusCode, ...(rest as [string, http2.OutgoingHttpHeaders]));
  }

  override addTrailers(trailers: http2.OutgoingHttpHeaders): void {
    respecHeaders(trailers);
    super.addTrailers(trailers);
  }

  /**
   * A call can be answered before its request is read to the end (a message over the size
   * limit). Node then leaves the stream open, and a client still uploading waits for ever for
   * flow-control credit. Once the response is complete (Node asks for its trailers), RST_STREAM
   * with NO_ERROR tells the client to stop sending (RFC 9113, section 8.1) and frees the stream.
   */
  override end(...args: unknown[]): this {
    if (!this.req.readableEnded) this.stream.once('wantTrailers', () => setImmediate(endUnreadRequest, this.req));
    return super.end(...(args as []));
  }
}

function respecHeaders(headers: unknown): void {
  if (typeof headers !== 'object' || headers === null || !(GRPC_MESSAGE in headers)) return;
  const record = headers as Record<string, unknown>;
  const value = record[GRPC_MESSAGE];
  if (typeof value === 'string') record[GRPC_MESSAGE] = respecGrpcMessage(value);
}

function endUnreadRequest(req: http2.Http2ServerRequest): void {
  if (!req.readableEnded && !req.stream.closed) req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
}
