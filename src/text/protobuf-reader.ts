/**
 * A minimal protobuf wire-format reader: enough to walk the fields of a message whose schema the caller knows.
 * Malformed input throws ProtobufError with the byte offset; callers turn it into an InputError naming the file.
 */
export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

export const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  Fixed32 = 5,
}

export interface Field {
  field: number;
  wireType: WireType;
  /** Varint fields: the low 32 bits as a signed integer (protobuf's int32/enum/bool view of the value). */
  int: number;
  /** Bytes fields: the payload (a view, not a copy) and its offset in the outermost buffer. */
  bytes: Uint8Array;
  bytesOffset: number;
  /** Fixed32 fields: the value read as a little-endian float. */
  float: number;
  /** Offset of the field's key in the outermost buffer, for messages. */
  offset: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(bytes: Uint8Array, where: number): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtobufError(`invalid UTF-8 string at offset ${where}`);
  }
}

/** Iterates over the fields of one message; `base` is the message's offset in the outermost buffer. */
export function* readFields(buf: Uint8Array, base = 0): Generator<Field> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const varint = (): number => {
    // Keeps the low 32 bits (int32 fields such as pad_id = -1 are written as 10-byte varints).
    let low = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= buf.length) throw new ProtobufError(`truncated varint at offset ${base + pos}`);
      if (shift >= 70) throw new ProtobufError(`varint longer than 10 bytes at offset ${base + pos}`);
      const b = buf[pos++]!;
      if (shift < 32) low |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return low | 0;
    }
  };
  while (pos < buf.length) {
    const offset = base + pos;
    const key = varint() >>> 0;
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 0) throw new ProtobufError(`field number 0 at offset ${offset}`);
    const out: Field = { field, wireType, int: 0, bytes: new Uint8Array(0), bytesOffset: 0, float: 0, offset };
    switch (wireType) {
      case WireType.Varint:
        out.int = varint();
        break;
      case WireType.Fixed64:
        if (pos + 8 > buf.length) throw new ProtobufError(`truncated fixed64 at offset ${offset}`);
        pos += 8;
        break;
      case WireType.Bytes: {
        const length = varint() >>> 0;
        if (pos + length > buf.length) {
          throw new ProtobufError(`field ${field} at offset ${offset} claims ${length} bytes, past the end`);
        }
        out.bytes = buf.subarray(pos, pos + length);
        out.bytesOffset = base + pos;
        pos += length;
        break;
      }
      case WireType.Fixed32:
        if (pos + 4 > buf.length) throw new ProtobufError(`truncated fixed32 at offset ${offset}`);
        out.float = view.getFloat32(pos, true);
        pos += 4;
        break;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType} at offset ${offset}`);
    }
    yield out;
  }
}
