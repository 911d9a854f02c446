/**
 * timm's ConvNeXt (timm/models/convnext.py; LLaVA-HR vendors it as llava_hr/model/multimodal_encoder/convnext.py)
 * in timm's weight names, with `conv_mlp=False`: the block MLPs are Linear layers on channels-last maps and the
 * block norm is a plain LayerNorm over channels; the stem and downsample norms are LayerNorm2d (the same
 * normalisation over channels of a channels-first map). Inference only: drop_path is the identity.
 */
import { InputError } from '../errors.js';
import type { Value } from '../graph/ir.js';
import * as op from '../graph/ops/index.js';
import type { WeightScope } from '../graph/weights.js';
import { linear } from './linear.js';

export interface ConvNextConfig {
  depths: readonly number[];
  dims: readonly number[];
  normEps: number;
  /** Stem conv kernel and stride. */
  patchSize: number;
  /** Depthwise conv kernel of every block. */
  kernelSize: number;
}

/** timm `convnext_large_mlp` (LLaVA-HR-7B's `convnext_large_mlp.clip_laion2b_ft_320`). */
export const CONVNEXT_LARGE: ConvNextConfig = { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536], normEps: 1e-6, patchSize: 4, kernelSize: 7 };
/** timm `convnext_xxlarge` (LLaVA-HR-X's `convnext_xxlarge.clip_laion2b_soup`), whose norms use eps 1e-5. */
export const CONVNEXT_XXLARGE: ConvNextConfig = { depths: [3, 4, 30, 3], dims: [384, 768, 1536, 3072], normEps: 1e-5, patchSize: 4, kernelSize: 7 };

/**
 * The configuration a timm model name stands for, as LLaVA-HR picks it (convnext_encoder.py: XXL iff the name
 * contains 'xxlarge', otherwise convnext_large_mlp).
 */
export function convnextConfigFromName(name: string): ConvNextConfig {
  return name.includes('xxlarge') ? CONVNEXT_XXLARGE : CONVNEXT_LARGE;
}

/** The output grid side of a square `size` input: the stem divides by patchSize, each later stage by 2. */
export function convnextGrid(config: ConvNextConfig, size: number): number {
  let grid = Math.floor(size / config.patchSize);
  for (let s = 1; s < config.dims.length; s++) grid = Math.floor(grid / 2);
  return grid;
}

/**
 * Runs the stem and every stage on x [N, 3, H, W] and returns each stage's output, [N, dims[s], H/4/2^s, W/4/2^s].
 * `scope` holds timm's names (`stem.0`, `stages.s.blocks.j...`); a checkpoint's `head.*` is not read.
 */
export function convnextStages(scope: WeightScope, config: ConvNextConfig, x: Value): Value[] {
  const { depths, dims, normEps, patchSize } = config;
  if (depths.length !== dims.length) throw new InputError(`ConvNeXt: ${depths.length} depths for ${dims.length} dims`);
  const stem = scope.at('stem');
  let h = layerNorm2d(stem.at(1), conv2d(stem.at(0), x, { strides: [patchSize, patchSize] }), normEps);
  const outputs: Value[] = [];
  dims.forEach((_, s) => {
    const stage = scope.at('stages').at(s);
    if (s > 0) {
      const down = stage.at('downsample');
      h = conv2d(down.at(1), layerNorm2d(down.at(0), h, normEps), { strides: [2, 2] });
    }
    for (let j = 0; j < depths[s]!; j++) h = convnextBlock(stage.at('blocks').at(j), config, h);
    outputs.push(h);
  });
  return outputs;
}

/** Depthwise conv → LayerNorm (channels last) → fc1 → GELU → fc2 → × layer scale `weight` → + input. */
function convnextBlock(block: WeightScope, config: ConvNextConfig, x: Value): Value {
  const pad = (config.kernelSize - 1) / 2;
  const dw = conv2d(block.at('conv_dw'), x, { pads: [pad, pad, pad, pad], group: block.shape('conv_dw.weight')[0]! });
  const norm = block.at('norm');
  let y = op.layerNorm(op.transpose(dw, [0, 2, 3, 1]), norm.weight('weight'), norm.weight('bias'), config.normEps);
  const mlp = block.at('mlp');
  y = linear(mlp, 'fc2.weight', op.gelu(linear(mlp, 'fc1.weight', y, 'fp32', 'fc1.bias')), 'fp32', 'fc2.bias');
  // The layer scale is absent when a model was built with ls_init_value=None.
  if (block.has('weight')) y = op.mul(y, block.weight('weight'));
  return op.add(x, op.transpose(y, [0, 3, 1, 2]));
}

/** timm LayerNorm2d: LayerNorm over the channels of [N, C, H, W] (computed channels-last, as timm does). */
function layerNorm2d(norm: WeightScope, x: Value, eps: number): Value {
  return op.transpose(op.layerNorm(op.transpose(x, [0, 2, 3, 1]), norm.weight('weight'), norm.weight('bias'), eps), [0, 3, 1, 2]);
}

/** An nn.Conv2d with its `weight` and `bias` in `scope`. */
export function conv2d(scope: WeightScope, x: Value, opts: op.ConvOptions = {}): Value {
  return op.conv(x, scope.weight('weight'), scope.has('bias') ? scope.weight('bias') : null, opts);
}
