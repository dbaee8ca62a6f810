import { isUtf8 } from 'node:buffer';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { CheckRequestSchema } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { authorizationHeader } from './ext-authz.service.js';

// Field numbers of envoy.service.auth.v3 (external_auth.proto, attribute_context.proto) and envoy.config.core.v3.HeaderMap.
const CHECK_REQUEST_ATTRIBUTES = 1;
const ATTRIBUTES_REQUEST = 4;
const REQUEST_HTTP = 2;
const HTTP_HEADERS = 3;
const HTTP_HEADER_MAP = 13;
const HEADER_MAP_HEADERS = 1;
// A map entry and a HeaderValue: key 1, value 2; HeaderValue's raw_value 3.
const KEY = 1;
const VALUE = 2;
const RAW_VALUE = 3;

const AUTHORIZATION = Buffer.from('authorization');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder();

/** A field came with a wire type or length the reader did not expect, or a string that is not UTF-8: decode in full instead. */
class Unexpected extends Error {}

/**
 * The Authorization header of a CheckRequest's `attributes.request.http`, as
 * authorizationHeader gives it from a full decode, read straight from the protobuf bytes:
 * of the ten or so headers Envoy sends only that value becomes a string, and the rest of the
 * request (addresses, principals, time, path, host, metadata) is skipped unparsed. Building
 * the whole CheckRequest was a third of a cached Check (issue 16). Repeated occurrences merge
 * as protobuf says (map entries: the last wins; header_map: appended). Every header key and
 * value read is checked to be UTF-8 as fromBinary checks it; anything the reader does not
 * expect is decoded in full by fromBinary, whose error, if any, is the one the caller gets, as
 * on the Connect path. One difference is deliberate: a request whose skipped fields are
 * malformed inside is answered on the fast path, where Connect's full decode refuses it with
 * INTERNAL; Envoy does not send such requests.
 */
export function readCheckAuthorization(bytes: Uint8Array): string | undefined {
  try {
    return project(new BinaryReader(bytes), bytes);
  } catch {
    // Unexpected, or the wire reader's own error on a cut or malformed field.
    return authorizationHeader(fromBinary(CheckRequestSchema, bytes).attributes?.request?.http);
  }
}

/** What the headers said so far: the last `authorization` of `headers`, and header_map's in order. */
interface Found {
  fromHeaders: string | undefined;
  readonly fromHeaderMap: string[];
}

function project(reader: BinaryReader, bytes: Uint8Array): string | undefined {
  const found: Found = { fromHeaders: undefined, fromHeaderMap: [] };
  // CheckRequest → attributes → request → http: descend into the one field wanted at each level.
  within(reader, reader.len, CHECK_REQUEST_ATTRIBUTES, (attributesEnd) =>
    within(reader, attributesEnd, ATTRIBUTES_REQUEST, (requestEnd) => within(reader, requestEnd, REQUEST_HTTP, (httpEnd) => readHttp(reader, bytes, httpEnd, found))),
  );
  if (found.fromHeaders !== undefined) return found.fromHeaders;
  return found.fromHeaderMap.length === 0 ? undefined : found.fromHeaderMap.join(',');
}

/** Calls `read` with the end of each message field numbered `wanted` before `end`; skips every other field. */
function within(reader: BinaryReader, end: number, wanted: number, read: (fieldEnd: number) => void): void {
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (tag >>> 3 === wanted) read(messageEnd(reader, tag));
    else skip(reader, tag);
  }
}

function readHttp(reader: BinaryReader, bytes: Uint8Array, end: number, found: Found): void {
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    const field = tag >>> 3;
    if (field === HTTP_HEADERS) {
      const entry = readHeader(reader, bytes, messageEnd(reader, tag));
      if (matches(bytes, entry.key, false)) found.fromHeaders = text(bytes, entry.value);
    } else if (field === HTTP_HEADER_MAP) {
      within(reader, messageEnd(reader, tag), HEADER_MAP_HEADERS, (headerEnd) => {
        const header = readHeader(reader, bytes, headerEnd);
        if (!matches(bytes, header.key, true)) return;
        const raw = header.rawValue;
        found.fromHeaderMap.push(raw !== undefined && raw.end > raw.start ? lenientUtf8.decode(bytes.subarray(raw.start, raw.end)) : text(bytes, header.value));
      });
    } else skip(reader, tag);
  }
}

/** Where a length-delimited field's bytes are in the buffer. */
interface Span {
  readonly start: number;
  readonly end: number;
}

const EMPTY: Span = { start: 0, end: 0 };

/**
 * A map<string, string> entry or a HeaderValue: where its key, value and raw_value are (each
 * empty when absent, the last occurrence winning), its key and value checked to be UTF-8.
 */
function readHeader(reader: BinaryReader, bytes: Uint8Array, end: number): { key: Span; value: Span; rawValue: Span | undefined } {
  let key = EMPTY;
  let value = EMPTY;
  let rawValue: Span | undefined;
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    const field = tag >>> 3;
    if (field === KEY) key = utf8Span(reader, bytes, tag);
    else if (field === VALUE) value = utf8Span(reader, bytes, tag);
    else if (field === RAW_VALUE) rawValue = span(reader, tag);
    else skip(reader, tag);
  }
  return { key, value, rawValue };
}

/** Whether the key is `authorization`: exactly, or (header_map) in any ASCII case, as String.toLowerCase compares it. */
function matches(buf: Uint8Array, key: Span, anyCase: boolean): boolean {
  if (key.end - key.start !== AUTHORIZATION.length) return false;
  for (let i = 0; i < AUTHORIZATION.length; i++) {
    const byte = buf[key.start + i]!;
    // Every letter of `authorization` is a lower-case ASCII letter: OR 0x20 maps only its upper case onto it.
    if (byte !== AUTHORIZATION[i] && !(anyCase && (byte | 0x20) === AUTHORIZATION[i])) return false;
  }
  return true;
}

const text = (buf: Uint8Array, at: Span): string => strictUtf8.decode(buf.subarray(at.start, at.end));

/**
 * The next tag before `end`, read as a plain varint (BinaryReader.tag() allocates a pair per
 * field); undefined at `end`, which a field must end on exactly.
 */
function next(reader: BinaryReader, end: number): number | undefined {
  if (reader.pos === end) return undefined;
  if (reader.pos > end) throw new Unexpected();
  const tag = reader.uint32();
  // Field number 0 and wire types 6 and 7 do not exist: the full decoder says what it makes of them.
  if (tag >>> 3 === 0 || (tag & 7) > (WireType.Bit32 as number)) throw new Unexpected();
  return tag;
}

const skip = (reader: BinaryReader, tag: number) => void reader.skip(tag & 7, tag >>> 3);

/** The bytes of the length-delimited field whose tag was just read, the reader moved past them. */
function span(reader: BinaryReader, tag: number): Span {
  const end = messageEnd(reader, tag);
  const start = reader.pos;
  reader.pos = end;
  return { start, end };
}

/** A proto3 string's bytes: not UTF-8 throws, and fromBinary then gives its own error. */
function utf8Span(reader: BinaryReader, bytes: Uint8Array, tag: number): Span {
  const at = span(reader, tag);
  if (!isUtf8(bytes.subarray(at.start, at.end))) throw new Unexpected();
  return at;
}

/** The end of the length-delimited field whose tag was just read (a message must be length-delimited). */
function messageEnd(reader: BinaryReader, tag: number): number {
  if ((tag & 7) !== (WireType.LengthDelimited as number)) throw new Unexpected();
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new Unexpected();
  return end;
}
