import http2 from 'node:http2';

const GRPC_MESSAGE = 'grpc-message';

/**
 * Percent-encodes a status message as the gRPC HTTP/2 spec and grpc-go do: only the bytes
 * outside printable ASCII, and '%' itself.
 */
export function encodeGrpcMessage(message: string): string {
  let encoded = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/**
 * Connect encodes grpc-message with encodeURIComponent, which also escapes ':', '@', ',' and
 * ';'. Decoders that follow the spec read either form, but grpc-js decodes with decodeURI,
 * which leaves those escapes alone: its callers would read "email%3A must contain exactly one
 * %40". Re-encoded, every client reads the message as written.
 */
export function respecGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return encodeGrpcMessage(decodeURIComponent(value));
  } catch {
    return value; // not ours to repair
  }
}

function respecHeaders(headers: unknown): void {
  if (typeof headers !== 'object' || headers === null || !(GRPC_MESSAGE in headers)) return;
  const record = headers as Record<string, unknown>;
  const value = record[GRPC_MESSAGE];
  if (typeof value === 'string') record[GRPC_MESSAGE] = respecGrpcMessage(value);
}

/**
 * The server's response class: a trailers-only answer carries grpc-message in its headers,
 * any other in its trailers; both pass through respecGrpcMessage.
 */
export class GrpcServerResponse extends http2.Http2ServerResponse {
  override writeHead(statusCode: number, headers?: http2.OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, statusMessage: string, headers?: http2.OutgoingHttpHeaders | readonly string[]): this;
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    respecHeaders(rest.at(-1));
    return super.writeHead(statusCode, ...(rest as [string, http2.OutgoingHttpHeaders]));
  }

  override addTrailers(trailers: Parameters<http2.Http2ServerResponse['addTrailers']>[0]): void {
    respecHeaders(trailers);
    super.addTrailers(trailers);
  }
}
