import { describe, expect, it } from 'vitest';
import { encodeGrpcMessage, respecGrpcMessage } from '../../src/transport/http/grpc-status-message.js';

describe('encodeGrpcMessage (the gRPC HTTP/2 spec, as grpc-go encodes)', () => {
  it('leaves printable ASCII as it is, reserved URI characters included', () => {
    expect(encodeGrpcMessage('email: must contain exactly one @; retry in 3 s, please ~ [] /?#')).toBe('email: must contain exactly one @; retry in 3 s, please ~ [] /?#');
  });

  it('escapes %, control characters and every byte of non-ASCII UTF-8', () => {
    expect(encodeGrpcMessage('100%')).toBe('100%25');
    expect(encodeGrpcMessage('a\nb\tc\u007f')).toBe('a%0Ab%09c%7F');
    expect(encodeGrpcMessage('é 😀')).toBe('%C3%A9 %F0%9F%98%80');
  });
});

describe('respecGrpcMessage', () => {
  it('turns encodeURIComponent output into the spec form, which decodeURI (grpc-js) and decodeURIComponent both read back', () => {
    for (const message of ['email: must contain exactly one @', 'too many failed attempts, retry in 3 s', 'name: é, 😀; 50% done', '']) {
      const respecced = respecGrpcMessage(encodeURIComponent(message));
      expect(decodeURI(respecced)).toBe(message);
      expect(decodeURIComponent(respecced)).toBe(message);
    }
  });

  it('keeps a value it cannot decode, and one without escapes', () => {
    expect(respecGrpcMessage('%E0%A4%A')).toBe('%E0%A4%A');
    expect(respecGrpcMessage('plain text')).toBe('plain text');
  });
});
