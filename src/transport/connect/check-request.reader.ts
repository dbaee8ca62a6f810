import { create, fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { CheckRequestSchema, type CheckRequest } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';

type HttpInit = NonNullable<NonNullable<NonNullable<MessageInitShape<typeof CheckRequestSchema>['attributes']>['request']>['http']>;
type HeaderValueInit = { key: string; value: string; rawValue: Uint8Array };

// Field numbers of envoy.service.auth.v3 (external_auth.proto, attribute_context.proto) and envoy.config.core.v3.HeaderMap.
const CHECK_REQUEST_ATTRIBUTES = 1;
const ATTRIBUTES_REQUEST = 4;
const REQUEST_HTTP = 2;
const HTTP_HEADERS = 3;
const HTTP_HEADER_MAP = 13;
const HEADER_MAP_HEADERS = 1;

/** A field came with a wire type or length the reader did not expect: decode in full instead. */
class Unexpected extends Error {}

/**
 * A CheckRequest as the fast path hands it to Check: only what the handler reads,
 * `attributes.request.http` `headers` and `header_map`, decoded with protobuf-es's own wire
 * reader and the rest of what Envoy sends (addresses, principals, the request's time, path and
 * host, metadata) skipped unparsed. Decoding all of it was a third of a cached Check (issue 16).
 * Repeated occurrences merge as protobuf says (map entries: the last wins; header_map: appended).
 * Anything the reader does not expect is decoded in full by fromBinary, whose error, if any,
 * is the one the caller gets, as on the Connect path. One difference is deliberate: a request
 * whose skipped fields are malformed inside is answered on the fast path, where Connect's full
 * decode refuses it with INTERNAL; Envoy does not send such requests.
 */
export function readCheckRequest(bytes: Uint8Array): CheckRequest {
  try {
    return project(new BinaryReader(bytes));
  } catch {
    // Unexpected, or the wire reader's own error on a cut or malformed field.
    return fromBinary(CheckRequestSchema, bytes);
  }
}

function project(reader: BinaryReader): CheckRequest {
  const found: Found = { attributes: undefined, http: undefined };
  // CheckRequest → attributes → request → http: descend into the one field wanted at each level.
  for (let tag = next(reader, reader.len); tag !== undefined; tag = next(reader, reader.len)) {
    if (field(tag) !== CHECK_REQUEST_ATTRIBUTES) skip(reader, tag);
    else readAttributes(reader, messageEnd(reader, tag), found);
  }
  return create(CheckRequestSchema, found.attributes === undefined ? {} : { attributes: found.attributes });
}

interface Found {
  attributes: { request?: { http?: HttpInit } } | undefined;
  http: HttpFound | undefined;
}

type HttpFound = { headers: Record<string, string>; headerMap?: { headers: HeaderValueInit[] } };

function readAttributes(reader: BinaryReader, end: number, found: Found): void {
  const attributes = (found.attributes ??= {});
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (field(tag) !== ATTRIBUTES_REQUEST) {
      skip(reader, tag);
      continue;
    }
    const request = (attributes.request ??= {});
    const requestEnd = messageEnd(reader, tag);
    for (let inner = next(reader, requestEnd); inner !== undefined; inner = next(reader, requestEnd)) {
      if (field(inner) !== REQUEST_HTTP) {
        skip(reader, inner);
        continue;
      }
      // No prototype: a header named __proto__ is a key like any other, as fromBinary keeps it.
      request.http = found.http ??= { headers: Object.create(null) as Record<string, string> };
      readHttp(reader, messageEnd(reader, inner), found.http);
    }
  }
}

function readHttp(reader: BinaryReader, end: number, http: HttpFound): void {
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (field(tag) === HTTP_HEADERS) {
      const [key, value] = readEntry(reader, messageEnd(reader, tag));
      http.headers[key] = value;
    } else if (field(tag) === HTTP_HEADER_MAP) {
      const list = (http.headerMap ??= { headers: [] }).headers;
      const mapEnd = messageEnd(reader, tag);
      for (let inner = next(reader, mapEnd); inner !== undefined; inner = next(reader, mapEnd)) {
        if (field(inner) === HEADER_MAP_HEADERS) list.push(readHeaderValue(reader, messageEnd(reader, inner)));
        else skip(reader, inner);
      }
    } else skip(reader, tag);
  }
}

/** A map<string, string> entry: key 1, value 2, each empty when absent. */
function readEntry(reader: BinaryReader, end: number): [string, string] {
  let key = '';
  let value = '';
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (field(tag) === 1) key = stringField(reader, tag);
    else if (field(tag) === 2) value = stringField(reader, tag);
    else skip(reader, tag);
  }
  return [key, value];
}

function readHeaderValue(reader: BinaryReader, end: number): HeaderValueInit {
  const header: HeaderValueInit = { key: '', value: '', rawValue: new Uint8Array(0) };
  for (let tag = next(reader, end); tag !== undefined; tag = next(reader, end)) {
    if (field(tag) === 1) header.key = stringField(reader, tag);
    else if (field(tag) === 2) header.value = stringField(reader, tag);
    else if (field(tag) === 3) {
      lengthDelimited(tag);
      header.rawValue = reader.bytes();
    } else skip(reader, tag);
  }
  return header;
}

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

const field = (tag: number) => tag >>> 3;
const skip = (reader: BinaryReader, tag: number) => void reader.skip(tag & 7, tag >>> 3);

function lengthDelimited(tag: number): void {
  if ((tag & 7) !== (WireType.LengthDelimited as number)) throw new Unexpected();
}

/** A proto3 string: invalid UTF-8 throws, as in fromBinary (which then gives its own error). */
function stringField(reader: BinaryReader, tag: number): string {
  lengthDelimited(tag);
  return reader.string(true);
}

/** The end of the message field whose tag was just read (a message must be length-delimited). */
function messageEnd(reader: BinaryReader, tag: number): number {
  lengthDelimited(tag);
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new Unexpected();
  return end;
}
