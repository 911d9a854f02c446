import type { Value } from '../ir.js';
import { broadcast, fail, sameDim } from '../shape.js';

/** Matrix product with numpy semantics (batched, broadcast over leading dims). */
export function matmul(a: Value, b: Value): Value {
  if (a.type !== b.type) fail('MatMul', [a, b], 'element types differ');
  if (a.rank < 1 || b.rank < 1) fail('MatMul', [a, b], 'operands must have rank ≥ 1');
  const k1 = a.shape[a.rank - 1]!;
  const k2 = b.rank === 1 ? b.shape[0]! : b.shape[b.rank - 2]!;
  if (sameDim(k1, k2) === false) fail('MatMul', [a, b], `inner dims ${k1} and ${k2} differ`);
  const batch = broadcast('MatMul', [a, b], [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
  const shape = [...batch];
  if (a.rank > 1) shape.push(a.shape[a.rank - 2]!);
  if (b.rank > 1) shape.push(b.shape[b.rank - 1]!);
  return a.graph.node('MatMul', [a, b], [{ type: a.type, shape }])[0]!;
}

/** y = alpha · op(a) · op(b) + beta · c, 2-D only (ONNX Gemm). */
export function gemm(a: Value, b: Value, c?: Value, opts: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): Value {
  if (a.rank !== 2 || b.rank !== 2) fail('Gemm', [a, b], 'operands must be 2-D');
  const [m, k1] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [k2, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (sameDim(k1, k2) === false) fail('Gemm', [a, b], `inner dims ${k1} and ${k2} differ`);
  const attrs = {
    transA: opts.transA ? 1 : 0,
    transB: opts.transB ? 1 : 0,
    alpha: { float: opts.alpha ?? 1 },
    beta: { float: opts.beta ?? 1 },
  };
  return a.graph.node('Gemm', c ? [a, b, c] : [a, b], [{ type: a.type, shape: [m, n] }], attrs)[0]!;
}

export interface QuantizedWeight {
  /** uint8 [N, K / blockSize, blockSize · bits / 8], as com.microsoft.MatMulNBits expects. */
  packed: Value;
  /** float32 [N · K / blockSize]. */
  scales: Value;
  /** uint8 packed zero points, or absent for the symmetric default (2^(bits-1)). */
  zeroPoints?: Value;
  k: number;
  n: number;
  bits: 4 | 8;
  blockSize: number;
}

/**
 * x [..., K] × dequant(W) [K, N] with block-quantised weights, run by ORT's com.microsoft.MatMulNBits.
 * accuracyLevel 4 quantises activations to int8 and uses VNNI: ~3.5× faster decode on AVX-512 (DESIGN.md).
 */
export function matmulNBits(x: Value, w: QuantizedWeight, accuracyLevel: 0 | 1 | 2 | 3 | 4 = 4): Value {
  if (x.type !== 'float32') fail('MatMulNBits', [x], 'activations must be float32');
  if (sameDim(x.shape[x.rank - 1]!, w.k) === false) fail('MatMulNBits', [x, w.packed], `input dim must be K=${w.k}`);
  const attrs = { K: w.k, N: w.n, bits: w.bits, block_size: w.blockSize, accuracy_level: accuracyLevel };
  const inputs = [x, w.packed, w.scales, w.zeroPoints ?? null];
  return x.graph.node('MatMulNBits', w.zeroPoints ? inputs : inputs.slice(0, 3), [{ type: 'float32', shape: [...x.shape.slice(0, -1), w.n] }], attrs, 'com.microsoft')[0]!;
}
