import type { Graph } from './ir.js';
import type { QuantizedWeight } from './ops/linear.js';

export interface BlockQuantized {
  /** [N][K/blockSize][blockSize·bits/8] codes, low nibble first for 4 bits (com.microsoft.MatMulNBits layout). */
  packed: Uint8Array;
  /** [N][K/blockSize] scales. */
  scales: Float32Array;
  n: number;
  k: number;
  bits: 4 | 8;
  blockSize: number;
}

/**
 * Symmetric block-wise quantisation of a linear weight stored as [N, K] (out × in, PyTorch's nn.Linear layout,
 * which is also the layout MatMulNBits wants). Codes are q + 2^(bits-1) with q = round(w / scale) and
 * scale = absmax / (2^(bits-1) - 1), so MatMulNBits' default zero point (2^(bits-1)) applies and no zero-point
 * tensor is stored.
 */
export function quantizeBlockwise(weight: Float32Array, n: number, k: number, bits: 4 | 8, blockSize = 32): BlockQuantized {
  if (weight.length !== n * k) throw new RangeError(`weight has ${weight.length} values, expected ${n}×${k}`);
  if (k % blockSize) throw new RangeError(`K=${k} is not a multiple of the block size ${blockSize}`);
  const blocks = k / blockSize;
  const blob = (blockSize * bits) / 8;
  const packed = new Uint8Array(n * blocks * blob);
  const scales = new Float32Array(n * blocks);
  const qmax = (1 << (bits - 1)) - 1;
  const zero = 1 << (bits - 1);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      const base = row * k + b * blockSize;
      let absmax = 0;
      for (let i = 0; i < blockSize; i++) absmax = Math.max(absmax, Math.abs(weight[base + i]!));
      const scale = Math.fround(absmax / qmax);
      scales[row * blocks + b] = scale;
      const inv = scale === 0 ? 0 : 1 / scale;
      const out = (row * blocks + b) * blob;
      for (let i = 0; i < blockSize; i++) {
        const code = Math.min(Math.max(Math.round(weight[base + i]! * inv), -qmax - 1), qmax) + zero;
        if (bits === 8) packed[out + i] = code;
        else packed[out + (i >> 1)]! |= (i & 1 ? code << 4 : code);
      }
    }
  }
  return { packed, scales, n, k, bits, blockSize };
}

/** The weight that MatMulNBits computes with, as [N, K] floats. */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const { n, k, bits, blockSize } = q;
  const blocks = k / blockSize;
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const at = (row * blocks + b) * blob;
      const code = bits === 8 ? q.packed[at + j]! : (q.packed[at + (j >> 1)]! >> ((j & 1) * 4)) & 0xf;
      out[row * k + i] = Math.fround((code - zero) * q.scales[row * blocks + b]!);
    }
  }
  return out;
}

/** Adds a quantised weight to `graph` as initializers named `${name}.q` and `${name}.scales`. */
export function quantizedWeight(graph: Graph, name: string, q: BlockQuantized): QuantizedWeight {
  const blocks = q.k / q.blockSize;
  const packed = graph.weight(`${name}.q`, 'uint8', [q.n, blocks, (q.blockSize * q.bits) / 8], q.packed);
  const scales = graph.weight(`${name}.scales`, 'float32', [q.n * blocks], new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength));
  return { packed, scales, k: q.k, n: q.n, bits: q.bits, blockSize: q.blockSize };
}
