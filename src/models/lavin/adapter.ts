/**
 * LaVIN's Mixture-of-Modality adapter (lavin/mm_adapter.py RepAdapter_Router), the same module in every LLaMA block
 * and every CLIP block: y = x + s · (r₀ · B(A x) + r₁ · D(A x)), A a shared down-projection C → r (a kernel-1
 * Conv1d, i.e. a Linear), B and D grouped kernel-1 Conv1d up-projections r → C (output channels [0, C/g) read
 * hidden units [0, r/g), and so on), r = softmax((W · z + b) / t) the router's weights for a routing feature z.
 * No nonlinearity: the adapter is affine for a fixed route.
 */
import { InputError } from '../../errors.js';
import type { Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import type { WeightScope } from '../../graph/weights.js';
import type { TensorSource } from '../../io/checkpoint.js';

/** The adapter's geometry, as the checkpoint's tensors and saved `args` give it. */
export interface AdapterShape {
  /** Input and output width C. */
  width: number;
  /** Hidden units r (args.adapter_dim). */
  hidden: number;
  /** Groups g of the up-projections (RepAdapter_Router's default 2; the tensors' [C, r/g, 1] shape says it). */
  groups: number;
  /** s (args.adapter_scale). */
  scale: number;
  /** Router temperature t (args.temperature). */
  temperature: number;
}

const TENSORS = ['conv_A.weight', 'conv_A.bias', 'conv_B.weight', 'conv_B.bias', 'conv_D.weight', 'conv_D.bias', 'expert_weights.weight', 'expert_weights.bias'] as const;

/** The shapes an adapter of `shape` stores, by leaf name (mm_adapter.py's module definitions). */
function expectedShapes({ width, hidden, groups }: AdapterShape): Record<(typeof TENSORS)[number], number[]> {
  const up = [width, hidden / groups, 1];
  return {
    'conv_A.weight': [hidden, width, 1], 'conv_A.bias': [hidden],
    'conv_B.weight': up, 'conv_B.bias': [width],
    'conv_D.weight': up, 'conv_D.bias': [width],
    'expert_weights.weight': [2, width], 'expert_weights.bias': [2],
  };
}

/** Refuses an adapter (tensors `${module}.*` in `source`) that is missing or does not have `shape`'s shapes, naming the tensor. */
export function checkAdapter(source: TensorSource, module: string, shape: AdapterShape, what: string): void {
  for (const [leaf, expected] of Object.entries(expectedShapes(shape))) {
    const name = `${module}.${leaf}`;
    if (!source.has(name)) throw new InputError(`LaVIN checkpoint: no tensor '${name}' (${what})`);
    const got = source.info(name).shape;
    if (got.join(',') !== expected.join(',')) {
      throw new InputError(`LaVIN checkpoint: '${name}' is [${got}], expected [${expected}] for ${what} of width ${shape.width}`);
    }
  }
}

/** softmax((z · Wᵀ + b) / t) over the router's two experts: [..., C] → [..., 2]. */
export function routeWeights(scope: WeightScope, z: Value, shape: AdapterShape): Value {
  const logits = op.add(op.matmul(z, scope.weight('expert_weights.weight', { transpose: true })), scope.weight('expert_weights.bias'));
  return op.softmax(op.mul(logits, 1 / shape.temperature), -1);
}

/**
 * The adapter applied to x [..., C] with router weights `route` [..., 2] that broadcast against x's leading dims
 * (CLIP: one pair per token; LLaMA: one pair per sequence, [batch, 1, 2]).
 */
export function mixtureAdapter(scope: WeightScope, x: Value, route: Value, shape: AdapterShape): Value {
  const { width, hidden } = shape;
  const g = x.graph;
  const down = g.weight(scope.name('conv_A.weight'), 'float32', [width, hidden], async () => {
    // [r, C, 1] → [C, r] for x · Aᵀ.
    const w = await scope.read('conv_A.weight');
    const t = new Float32Array(width * hidden);
    for (let j = 0; j < hidden; j++) for (let c = 0; c < width; c++) t[c * hidden + j] = w[j * width + c]!;
    return new Uint8Array(t.buffer);
  }, width * hidden * 4);
  const h = op.add(op.matmul(x, down), scope.weight('conv_A.bias'));
  // Both experts in one product: [r, 2C], the grouped weights written out as block-diagonal dense matrices.
  const up = g.weight(`${scope.name('conv_B.weight')}+conv_D.weight`, 'float32', [hidden, 2 * width], async () => {
    const [b, d] = await Promise.all([scope.read('conv_B.weight'), scope.read('conv_D.weight')]);
    return new Uint8Array(groupedAsDense([b, d], shape).buffer);
  }, hidden * 2 * width * 4);
  const bias = op.concat([scope.weight('conv_B.bias'), scope.weight('conv_D.bias')], 0);
  const [p, q] = op.split(op.add(op.matmul(h, up), bias), [width, width], -1) as [Value, Value];
  const [r0, r1] = op.split(route, [1, 1], -1) as [Value, Value];
  return op.add(x, op.mul(op.add(op.mul(p, r0), op.mul(q, r1)), shape.scale));
}

/**
 * Grouped Conv1d weights [C, r/g, 1] (one per expert) → one dense [r, experts·C] matrix: expert e's output channel
 * o reads hidden unit ⌊o / (C/g)⌋ · r/g + k with weight w[o, k] (torch's grouped convolution).
 */
export function groupedAsDense(weights: readonly Float32Array[], { width, hidden, groups }: AdapterShape): Float32Array {
  const perGroup = hidden / groups;
  const cols = weights.length * width;
  const dense = new Float32Array(hidden * cols);
  weights.forEach((w, e) => {
    for (let o = 0; o < width; o++) {
      const first = Math.floor(o / (width / groups)) * perGroup;
      for (let k = 0; k < perGroup; k++) dense[(first + k) * cols + e * width + o] = w[o * perGroup + k]!;
    }
  });
  return dense;
}
