import { endianness } from 'node:os';
import { InputError } from '../errors.js';

/** Element types, named as safetensors names them. */
export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && Object.hasOwn(DTYPE_SIZE, name);
}

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64';
}

// Checkpoint bytes are little-endian and are viewed through typed arrays, which use the host order.
if (endianness() !== 'LE') throw new Error('egret needs a little-endian host');

/** Number of elements of a shape; InputError past 2^53 (only a lying header gets there). */
export function numElements(shape: readonly number[], where: string): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new InputError(`${where}: shape [${shape.join(', ')}] is too large`);
  }
  return n;
}

/** Byte size of a tensor of this dtype and shape. */
export function byteSize(dtype: DType, shape: readonly number[], where: string): number {
  const n = numElements(shape, where) * DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(n)) throw new InputError(`${where}: shape [${shape.join(', ')}] is too large`);
  return n;
}

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values as float32 (exact: every f16 is representable in f32). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    f16Table[h] = exponent === 0 ? sign * mantissa * 2 ** -24 // subnormal
      : exponent === 31 ? (mantissa ? NaN : sign * Infinity)
        : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return f16Table;
}

/** A typed view of `bytes`, copying first when its offset is not aligned to `size`. */
function aligned(bytes: Uint8Array, size: number): ArrayBuffer {
  if (bytes.byteLength % size !== 0) throw new InputError(`${bytes.byteLength} bytes are not a whole number of ${size}-byte elements`);
  return bytes.byteOffset % size === 0 ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
}

function offsetOf(bytes: Uint8Array, size: number): number {
  return bytes.byteOffset % size === 0 ? bytes.byteOffset : 0;
}

/**
 * Float tensor bytes (little-endian) as float32: F16 and BF16 exactly, F64 rounded to nearest.
 * F32 input aligned to 4 bytes is returned as a view of the same memory.
 */
export function toFloat32(dtype: DType, bytes: Uint8Array): Float32Array {
  const n = bytes.byteLength / DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned(bytes, 4), offsetOf(bytes, 4), n);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned(bytes, 8), offsetOf(bytes, 8), n));
    case 'F16': {
      const table = halfTable();
      const halves = new Uint16Array(aligned(bytes, 2), offsetOf(bytes, 2), n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[halves[i]!]!;
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32 (https://cloud.google.com/tpu/docs/bfloat16).
      const halves = new Uint16Array(aligned(bytes, 2), offsetOf(bytes, 2), n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = halves[i]! << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new InputError(`cannot convert ${dtype} to float32: not a floating-point dtype`);
  }
}
