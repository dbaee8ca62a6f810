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
// As fromBinary decodes strings: invalid UTF-8 throws, a leading byte-order mark is kept.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
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

/**
 * What the headers said so far: the last `authorization` of `headers`, and header_map's in
 * order. One record for every request, like `header` below, since reading is synchronous.
 */
const found = { fromHeaders: undefined as string | undefined, fromHeaderMap: [] as string[] };

/** CheckRequest → attributes → request → http: the one field wanted at each level. */
const PATH_TO_HTTP = [CHECK_REQUEST_ATTRIBUTES, ATTRIBUTES_REQUEST, REQUEST_HTTP];

function project(reader: BinaryReader, bytes: Uint8Array): string | undefined {
  try {
    descend(reader, bytes, reader.len, 0);
    return found.fromHeaders ?? (found.fromHeaderMap.length === 0 ? undefined : found.fromHeaderMap.join(','));
  } finally {
    // Empty again for the next request, even after a throw; nothing of this one stays alive.
    found.fromHeaders = undefined;
    found.fromHeaderMap.length = 0;
  }
}

/**
 * Into each occurrence of the message field PATH_TO_HTTP[depth] before `end` (occurrences
 * merge), skipping every other field, down to the http request. Recursion rather than a
 * callback per level: three closures a Check were a sixth of its own garbage.
 */
function descend(reader: BinaryReader, bytes: Uint8Array, end: number, depth: number): void {
  if (depth === PATH_TO_HTTP.length) return readHttp(reader, bytes, end);
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (tag >>> 3 === PATH_TO_HTTP[depth]) descend(reader, bytes, messageEnd(reader, tag), depth + 1);
    else skip(reader, tag);
  }
}

function readHttp(reader: BinaryReader, bytes: Uint8Array, end: number): void {
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    const field = tag >>> 3;
    if (field === HTTP_HEADERS) {
      readHeader(reader, bytes, messageEnd(reader, tag));
      if (matches(bytes, header.keyStart, header.keyEnd, false)) found.fromHeaders = text(bytes, header.valueStart, header.valueEnd);
    } else if (field === HTTP_HEADER_MAP) readHeaderMap(reader, bytes, messageEnd(reader, tag));
    else skip(reader, tag);
  }
}

function readHeaderMap(reader: BinaryReader, bytes: Uint8Array, end: number): void {
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (tag >>> 3 !== HEADER_MAP_HEADERS) {
      skip(reader, tag);
      continue;
    }
    readHeader(reader, bytes, messageEnd(reader, tag));
    if (!matches(bytes, header.keyStart, header.keyEnd, true)) continue;
    const { rawStart, rawEnd } = header;
    found.fromHeaderMap.push(rawEnd > rawStart ? lenientUtf8.decode(bytes.subarray(rawStart, rawEnd)) : text(bytes, header.valueStart, header.valueEnd));
  }
}

/**
 * Where the last header read has its key, value and raw_value: one object for every header of
 * every request, since reading is synchronous (an object per field and header was a third of
 * Check's garbage).
 */
const header = { keyStart: 0, keyEnd: 0, valueStart: 0, valueEnd: 0, rawStart: 0, rawEnd: 0 };

/**
 * A map<string, string> entry or a HeaderValue into `header` (each part empty when absent, the
 * last occurrence winning), its key and value checked to be UTF-8.
 */
function readHeader(reader: BinaryReader, bytes: Uint8Array, end: number): void {
  header.keyStart = header.keyEnd = header.valueStart = header.valueEnd = header.rawStart = header.rawEnd = 0;
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    const field = tag >>> 3;
    if (field !== KEY && field !== VALUE && field !== RAW_VALUE) {
      skip(reader, tag);
      continue;
    }
    const fieldEnd = messageEnd(reader, tag);
    const start = reader.pos;
    reader.pos = fieldEnd;
    if (field === RAW_VALUE) {
      header.rawStart = start;
      header.rawEnd = fieldEnd;
      continue;
    }
    if (!utf8(bytes, start, fieldEnd)) throw new Unexpected();
    if (field === KEY) {
      header.keyStart = start;
      header.keyEnd = fieldEnd;
    } else {
      header.valueStart = start;
      header.valueEnd = fieldEnd;
    }
  }
}

/** Whether the bytes are UTF-8: ASCII, as headers nearly always are, checked here without a view over them. */
function utf8(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i]! >= 0x80) return isUtf8(bytes.subarray(start, end));
  return true;
}

/** Whether the key is `authorization`: exactly, or (header_map) in any ASCII case, as String.toLowerCase compares it. */
function matches(bytes: Uint8Array, start: number, end: number, anyCase: boolean): boolean {
  if (end - start !== AUTHORIZATION.length) return false;
  for (let i = 0; i < AUTHORIZATION.length; i++) {
    const byte = bytes[start + i]!;
    // Every letter of `authorization` is a lower-case ASCII letter: OR 0x20 maps only its upper case onto it.
    if (byte !== AUTHORIZATION[i] && !(anyCase && (byte | 0x20) === AUTHORIZATION[i])) return false;
  }
  return true;
}

const text = (bytes: Uint8Array, start: number, end: number): string => strictUtf8.decode(bytes.subarray(start, end));

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

/**
 * Past the field whose tag was just read. The wire reader's own skip() returns the skipped bytes
 * as a new Buffer view, a dozen of them a Check: the common wire types are skipped here by
 * moving the position; groups go to skip().
 */
function skip(reader: BinaryReader, tag: number): void {
  const wireType = tag & 7;
  if (wireType === (WireType.LengthDelimited as number)) reader.pos = messageEnd(reader, tag);
  // uint32() reads a whole varint of up to ten bytes (keeping the low 32 bits) and checks its bounds.
  else if (wireType === (WireType.Varint as number)) reader.uint32();
  else if (wireType === (WireType.Bit32 as number)) moveTo(reader, reader.pos + 4);
  else if (wireType === (WireType.Bit64 as number)) moveTo(reader, reader.pos + 8);
  else reader.skip(wireType, tag >>> 3);
}

function moveTo(reader: BinaryReader, position: number): void {
  if (position > reader.len) throw new Unexpected();
  reader.pos = position;
}

/** The end of the length-delimited field whose tag was just read (a message must be length-delimited). */
function messageEnd(reader: BinaryReader, tag: number): number {
  if ((tag & 7) !== (WireType.LengthDelimited as number)) throw new Unexpected();
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new Unexpected();
  return end;
}
