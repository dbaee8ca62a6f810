import { configureTextEncoding } from '@bufbuild/protobuf/wire';

/**
 * A lone surrogate cannot come out of a UTF-8 decoder, so it marks "these bytes were not
 * UTF-8" unambiguously; the value objects refuse it as "must be valid UTF-8".
 */
const INVALID_UTF8_MARK = '\uD800';

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * Protobuf-ES rejects a string field holding invalid UTF-8 while parsing, and Connect
 * reports any parse failure as INTERNAL before a handler runs. The contract wants
 * INVALID_ARGUMENT naming the field, so strict decoding here marks the string instead of
 * throwing, and field validation reports it like any other bad value.
 */
export function reportInvalidUtf8AsBadField(): void {
  // configureTextEncoding is the library's documented hook for its UTF-8 handling; it is
  // marked deprecated for its original use (runtimes without TextDecoder), not this one.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  configureTextEncoding({
    checkUtf8: (text) => text.isWellFormed(),
    encodeUtf8: (text) => encoder.encode(text),
    encodeUtf8Into: (text, dest) => ({ written: encoder.encodeInto(text, dest).written }),
    decodeUtf8: (bytes, strict) => {
      if (strict !== true) return lenientDecoder.decode(bytes);
      try {
        return strictDecoder.decode(bytes);
      } catch {
        return lenientDecoder.decode(bytes) + INVALID_UTF8_MARK;
      }
    },
  });
}

/** For the Connect JSON codec: invalid UTF-8 in a JSON body is refused (INVALID_ARGUMENT), not replaced. */
export const strictJsonTextDecoder = strictDecoder;
