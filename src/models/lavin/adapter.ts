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

/** Dropout on the adapters' hidden units while training: its probability and the graph's random stream. */
export interface AdapterDropout {
  p: number;
  noise: op.DropoutNoise;
}

/** softmax((z · Wᵀ + b) / t) over the router's two experts: [..., C] → [..., 2]. */
export function routeWeights(scope: WeightScope, z: Value, shape: AdapterShape): Value {
  const logits = op.add(op.matmul(z, op.transpose(scope.weight('expert_weights.weight'), [1, 0])), scope.weight('expert_weights.bias'));
  return op.softmax(op.mul(logits, 1 / shape.temperature), -1);
}

/**
 * The adapter applied to x [batch, tokens, C] with router weights `route` that broadcast against it ([batch, tokens, 2]
 * in CLIP: one pair per token; [batch, 1, 2] in LLaMA: one pair per sequence). The checkpoint's tensors are used as
 * they are stored (training updates them in place and saves them in LaVIN's layout): the kernel-1 convolutions are
 * reshaped into products, the grouped ones as a batch of per-group products.
 */
export function mixtureAdapter(scope: WeightScope, x: Value, route: Value, shape: AdapterShape, dropout?: AdapterDropout): Value {
  const { width, hidden, groups } = shape;
  const perGroup = hidden / groups;
  const down = op.reshape(scope.weight('conv_A.weight'), [hidden, width]);
  // RepAdapter_Router's dropout (0.1 by default) acts on the down-projection, in training only.
  const h = op.dropout(op.add(op.matmul(x, op.transpose(down, [1, 0])), scope.weight('conv_A.bias')), dropout?.p ?? 0, dropout?.noise);
  // [batch, tokens, r] → [batch, tokens, g, 1, r/g]: group j's hidden units as one row.
  const rows = op.unsqueeze(op.reshape(h, [0, 0, groups, perGroup]), [3]);
  const expert = (leaf: string) => {
    // Conv1d weight [C, r/g, 1]: output channels [j·C/g, (j+1)·C/g) read group j → [g, r/g, C/g].
    const w = op.transpose(op.reshape(scope.weight(`${leaf}.weight`), [groups, width / groups, perGroup]), [0, 2, 1]);
    return op.add(op.reshape(op.matmul(rows, w), [0, 0, width]), scope.weight(`${leaf}.bias`));
  };
  const [r0, r1] = op.split(route, [1, 1], -1) as [Value, Value];
  return op.add(x, op.mul(op.add(op.mul(expert('conv_B'), r0), op.mul(expert('conv_D'), r1)), shape.scale));
}
