import { InputError } from '../errors.js';
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import { quantizeBlockwise, type BlockQuantized } from '../graph/quantize.js';
import { transpose2d, type WeightScope } from '../graph/weights.js';
import { WorkerHost } from '../runtime/worker.js';

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
  const y = stackedProduct(scope, [leaf], x, dtype);
  scope.graph.checkpointShapes.set(y.name, { tensor: scope.name(leaf), shape: scope.shape(leaf) });
  return biasLeaf ? op.add(y, scope.weight(biasLeaf)) : y;
}

/**
 * x · W_jᵀ for several nn.Linear weights of the same input width (LLaMA's q/k/v, gate/up), computed as one product
 * over the weights stacked along their outputs and split after it: at batch 1 a step streams every weight once,
 * and one larger product streams faster than several small ones (issue #3: MatMulNBits at model scale).
 */
export function stackedLinear(scope: WeightScope, leaves: readonly string[], x: Value, dtype: ComputeDtype): Value[] {
  const outs = leaves.map((leaf) => scope.shape(leaf)[0]!);
  const parts = op.split(stackedProduct(scope, leaves, x, dtype), outs, -1);
  parts.forEach((part, i) => scope.graph.checkpointShapes.set(part.name, { tensor: scope.name(leaves[i]!), shape: scope.shape(leaves[i]!) }));
  return parts;
}

/** One product with the weights of `leaves` ([n_j, k] each) stacked into [Σ n_j, k]; one leaf keeps its checkpoint name. */
function stackedProduct(scope: WeightScope, leaves: readonly string[], x: Value, dtype: ComputeDtype): Value {
  const shapes = leaves.map((leaf) => {
    const shape = scope.shape(leaf);
    if (shape.length !== 2) throw new InputError(`linear weight '${scope.name(leaf)}' [${shape}] must be 2-D`);
    return shape as [number, number];
  });
  const k = shapes[0]![1];
  if (shapes.some(([, kj]) => kj !== k)) throw new InputError(`stacked weights ${leaves.join(', ')} differ in input width`);
  const n = shapes.reduce((sum, [nj]) => sum + nj, 0);
  const name = leaves.map((leaf) => scope.name(leaf)).join('+');
  const g = scope.graph;
  const read = async () => {
    if (leaves.length === 1) return scope.read(leaves[0]!);
    const stacked = new Float32Array(n * k);
    let at = 0;
    for (const leaf of leaves) {
      const w = await scope.read(leaf);
      stacked.set(w, at);
      at += w.length;
    }
    return stacked;
  };
  if (dtype === 'fp32' || k % BLOCK_SIZE !== 0) {
    const weight = g.weight(name, 'float32', [k, n], async () => {
      const t = transpose2d(await read(), n, k);
      return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    }, n * k * 4);
    g.storedTransposed.set(name, leaves.map((leaf) => scope.name(leaf)));
    return op.matmul(x, weight);
  }
  const bits = dtype === 'q4' ? 4 : 8;
  // Both initializers come from one quantisation, done when the first is serialised and dropped after the second.
  let pending: Promise<BlockQuantized> | undefined;
  let consumed = 0;
  const quantized = () => {
    pending ??= read().then((w) => quantizeOffThread(w, n, k, bits));
    const result = pending;
    if (++consumed === 2) pending = undefined;
    return result;
  };
  const blocks = k / BLOCK_SIZE;
  const blob = (BLOCK_SIZE * bits) / 8;
  const packed = g.weight(`${name}.q${bits}`, 'uint8', [n, blocks, blob], async () => (await quantized()).packed, n * blocks * blob);
  const scales = g.weight(`${name}.scales`, 'float32', [n * blocks], async () => {
    const s = (await quantized()).scales;
    return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
  }, n * blocks * 4);
  return op.matmulNBits(x, { packed, scales, k, n, bits, blockSize: BLOCK_SIZE });
}

/** Weights smaller than this are quantised in place: a worker's start-up would cost more than it saves. */
const OFF_THREAD_WEIGHTS = 1 << 22;

let quantizer: WorkerHost | undefined;

/**
 * Quantises a large weight in a worker thread (its buffer moves there, and the result back, without copies), so
 * that the main thread meanwhile reads and converts the next weights (writeOnnxModel asks for them ahead).
 */
async function quantizeOffThread(weight: Float32Array, n: number, k: number, bits: 4 | 8): Promise<BlockQuantized> {
  if (weight.length < OFF_THREAD_WEIGHTS) return quantizeBlockwise(weight, n, k, bits, BLOCK_SIZE);
  quantizer ??= new WorkerHost(new URL('./quantize-worker.js', import.meta.url), { keepAliveWhileIdle: false });
  return quantizer.call<BlockQuantized>('quantize', weight, n, k, bits, BLOCK_SIZE);
}
