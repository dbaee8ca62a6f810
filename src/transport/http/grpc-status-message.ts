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
