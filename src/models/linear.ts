import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { quantizeBlockwise, type BlockQuantized } from '../graph/quantize.js';
import type { WeightScope } from '../graph/weights.js';

/** How linear layers compute: fp32 (parity with the references) or block-quantised weights run by MatMulNBits. */
export type ComputeDtype = 'fp32' | 'q8' | 'q4';

const BLOCK_SIZE = 32;

/** Bytes of weights `linear` stores (and a product reads) for an [n, k] weight: fp32, or codes plus a float32 scale per block. */
export function linearWeightBytes(n: number, k: number, dtype: ComputeDtype): number {
  if (dtype === 'fp32' || k % BLOCK_SIZE !== 0) return 4 * n * k;
  const bits = dtype === 'q4' ? 4 : 8;
  return (n * k * bits) / 8 + 4 * n * (k / BLOCK_SIZE);
}

/**
 * y = x · Wᵀ (+ b) for an nn.Linear weight W [out, in] named `leaf` in `scope`. In fp32 the weight is stored
 * transposed for MatMul; quantised, it keeps its [out, in] layout, which is MatMulNBits' own.
 */
export function linear(scope: WeightScope, leaf: string, x: Value, dtype: ComputeDtype, biasLeaf?: string): Value {
  const [n, k] = scope.shape(leaf) as [number, number];
  let y: Value;
  if (dtype === 'fp32' || k % BLOCK_SIZE !== 0) {
    y = op.matmul(x, scope.weight(leaf, { transpose: true }));
  } else {
    const bits = dtype === 'q4' ? 4 : 8;
    const name = scope.name(leaf);
    // Both initializers come from one quantisation, done when the first is serialised and dropped after the second.
    let pending: Promise<BlockQuantized> | undefined;
    let consumed = 0;
    const quantized = () => {
      pending ??= scope.read(leaf).then((w) => quantizeBlockwise(w, n, k, bits, BLOCK_SIZE));
      const result = pending;
      if (++consumed === 2) pending = undefined;
      return result;
    };
    const blocks = k / BLOCK_SIZE;
    const blob = (BLOCK_SIZE * bits) / 8;
    const g = scope.graph;
    const packed = g.weight(`${name}.q${bits}`, 'uint8', [n, blocks, blob], async () => (await quantized()).packed, n * blocks * blob);
    const scales = g.weight(`${name}.scales`, 'float32', [n * blocks], async () => {
      const s = (await quantized()).scales;
      return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
    }, n * blocks * 4);
    y = op.matmulNBits(x, { packed, scales, k, n, bits, blockSize: BLOCK_SIZE });
  }
  return biasLeaf ? op.add(y, scope.weight(biasLeaf)) : y;
}
