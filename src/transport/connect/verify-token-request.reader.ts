import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { VerifyTokenRequestSchema } from '../../gen/identity/v1/identity_pb.js';

/** identity.v1.VerifyTokenRequest.token */
const TOKEN = 1;

/**
 * The token of a VerifyTokenRequest, read from its protobuf bytes with protobuf-es's own wire
 * reader and string decoding, as fromBinary reads it: fromBinary's message, its context and
 * its unknown-field bookkeeping were a twentieth of a cached call (issue 16). Anything but the
 * token field (another field, another wire type) and any error is left to fromBinary, whose
 * result or error is then the one the caller gets, as on the Connect path.
 */
export function readVerifyToken(bytes: Uint8Array): string {
  try {
    const reader = new BinaryReader(bytes);
    let token = '';
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== TOKEN || wireType !== WireType.LengthDelimited) return fromBinary(VerifyTokenRequestSchema, bytes).token;
      // Proto3 strings are checked as UTF-8 (what fromBinary passes for this field).
      token = reader.string(true);
    }
    return token;
  } catch {
    return fromBinary(VerifyTokenRequestSchema, bytes).token;
  }
}
