import { toBinary } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { VerifyTokenResponseSchema, type VerifyTokenResponse } from '../../gen/identity/v1/identity_pb.js';

// Tags of identity.v1.VerifyTokenResponse (length-delimited) and google.protobuf.Timestamp (varint).
const USER_ID = 0x0a;
const EXPIRES_AT = 0x12;
const ISSUED_AT = 0x1a;
const TOKEN_ID = 0x22;
const SESSION_ID = 0x2a;
const SECONDS = 0x08;
const NANOS = 0x10;
/** Far above any answer (ids of 36 characters, two timestamps): past it, toBinary does the work. */
const MAX_BYTES = 1024;

/**
 * VerifyToken's answer in protobuf, byte for byte what toBinary writes (fields in number order,
 * empty strings and zero numbers left out), into one buffer from Node's pool. toBinary's own
 * writer allocates two ArrayBuffers per message, a twentieth of an uncached VerifyToken
 * (issue 16; a cached token's answer is encoded once anyway). Anything unusual (unknown fields,
 * a timestamp before 1970, a very long id) is left to toBinary.
 */
export function encodeVerifyTokenResponse(message: VerifyTokenResponse): Uint8Array {
  const { userId, expiresAt, issuedAt, tokenId, sessionId } = message;
  const size = stringSize(userId) + timestampSize(expiresAt) + timestampSize(issuedAt) + stringSize(tokenId) + stringSize(sessionId);
  if (message.$unknown !== undefined || Number.isNaN(size) || size > MAX_BYTES) return toBinary(VerifyTokenResponseSchema, message);
  const out = Buffer.allocUnsafe(size);
  let at = writeString(out, 0, USER_ID, userId);
  at = writeTimestamp(out, at, EXPIRES_AT, expiresAt);
  at = writeTimestamp(out, at, ISSUED_AT, issuedAt);
  at = writeString(out, at, TOKEN_ID, tokenId);
  writeString(out, at, SESSION_ID, sessionId);
  return out;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

function stringSize(value: string): number {
  if (value === '') return 0;
  const bytes = Buffer.byteLength(value);
  return 1 + varintSize(bytes) + bytes;
}

/** The timestamp's content size; NaN for what this encoder leaves to toBinary (negative or unsafe numbers, unknown fields). */
function contentSize(timestamp: Timestamp): number {
  const seconds = Number(timestamp.seconds);
  if (timestamp.$unknown !== undefined || seconds < 0 || !Number.isSafeInteger(seconds) || timestamp.nanos < 0) return Number.NaN;
  return (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (timestamp.nanos === 0 ? 0 : 1 + varintSize(timestamp.nanos));
}

function timestampSize(timestamp: Timestamp | undefined): number {
  if (timestamp === undefined) return 0;
  const content = contentSize(timestamp);
  return Number.isNaN(content) ? content : 1 + varintSize(content) + content;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let rest = value;
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[at++] = rest;
  return at;
}

function writeString(out: Buffer, at: number, tag: number, value: string): number {
  if (value === '') return at;
  out[at] = tag;
  const start = writeVarint(out, at + 1, Buffer.byteLength(value));
  return start + out.write(value, start, 'utf8');
}

function writeTimestamp(out: Buffer, at: number, tag: number, timestamp: Timestamp | undefined): number {
  if (timestamp === undefined) return at;
  out[at] = tag;
  let next = writeVarint(out, at + 1, contentSize(timestamp));
  const seconds = Number(timestamp.seconds);
  if (seconds !== 0) {
    out[next] = SECONDS;
    next = writeVarint(out, next + 1, seconds);
  }
  if (timestamp.nanos !== 0) {
    out[next] = NANOS;
    next = writeVarint(out, next + 1, timestamp.nanos);
  }
  return next;
}
