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
  let http: { headers: Record<string, string>; headerMap?: { headers: HeaderValueInit[] } } | undefined;
  let attributes: { request?: { http?: HttpInit } } | undefined;
  eachField(reader, reader.len, (field, wireType) => {
    if (field !== CHECK_REQUEST_ATTRIBUTES) return false;
    attributes ??= {};
    eachField(reader, messageEnd(reader, wireType), (field, wireType) => {
      if (field !== ATTRIBUTES_REQUEST) return false;
      attributes!.request ??= {};
      eachField(reader, messageEnd(reader, wireType), (field, wireType) => {
        if (field !== REQUEST_HTTP) return false;
        http ??= { headers: {} };
        attributes!.request!.http = http;
        readHttp(reader, messageEnd(reader, wireType), http);
        return true;
      });
      return true;
    });
    return true;
  });
  return create(CheckRequestSchema, attributes === undefined ? {} : { attributes });
}

function readHttp(reader: BinaryReader, end: number, http: { headers: Record<string, string>; headerMap?: { headers: HeaderValueInit[] } }): void {
  eachField(reader, end, (field, wireType) => {
    if (field === HTTP_HEADERS) {
      const [key, value] = readEntry(reader, messageEnd(reader, wireType));
      http.headers[key] = value;
      return true;
    }
    if (field !== HTTP_HEADER_MAP) return false;
    http.headerMap ??= { headers: [] };
    const list = http.headerMap.headers;
    eachField(reader, messageEnd(reader, wireType), (field, wireType) => {
      if (field !== HEADER_MAP_HEADERS) return false;
      list.push(readHeaderValue(reader, messageEnd(reader, wireType)));
      return true;
    });
    return true;
  });
}

/** A map<string, string> entry: key 1, value 2, each empty when absent. */
function readEntry(reader: BinaryReader, end: number): [string, string] {
  let key = '';
  let value = '';
  eachField(reader, end, (field, wireType) => {
    if (field !== 1 && field !== 2) return false;
    if (wireType !== WireType.LengthDelimited) throw new Unexpected();
    if (field === 1) key = reader.string();
    else value = reader.string();
    return true;
  });
  return [key, value];
}

function readHeaderValue(reader: BinaryReader, end: number): HeaderValueInit {
  const header: HeaderValueInit = { key: '', value: '', rawValue: new Uint8Array(0) };
  eachField(reader, end, (field, wireType) => {
    if (field < 1 || field > 3) return false;
    if (wireType !== WireType.LengthDelimited) throw new Unexpected();
    if (field === 1) header.key = reader.string();
    else if (field === 2) header.value = reader.string();
    else header.rawValue = reader.bytes();
    return true;
  });
  return header;
}

/** Calls `read` for every field up to `end`; a field it does not take (false) is skipped. */
function eachField(reader: BinaryReader, end: number, read: (field: number, wireType: WireType) => boolean): void {
  while (reader.pos < end) {
    const [field, wireType] = reader.tag();
    const start = reader.pos;
    if (read(field, wireType)) {
      if (reader.pos > end) throw new Unexpected();
      continue;
    }
    reader.pos = start;
    reader.skip(wireType, field);
  }
  if (reader.pos !== end) throw new Unexpected();
}

/** The end of the message field whose tag was just read (a message must be length-delimited). */
function messageEnd(reader: BinaryReader, wireType: WireType): number {
  if (wireType !== WireType.LengthDelimited) throw new Unexpected();
  const end = reader.uint32() + reader.pos;
  if (end > reader.len) throw new Unexpected();
  return end;
}
