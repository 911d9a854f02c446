/**
 * Mixture-of-Resolution Adaptation ("Feast Your Eyes", LLaVA-HR): a high-resolution convolutional map feeds a
 * low-resolution ViT's token stream through MR-Adapters between groups of ViT layers and a final fusion. As
 * luogen1996/LLaVA-HR runs it (llava_hr/model/multimodal_encoder/multipath_encoder_wapper.py), not as the paper
 * words it: the gate sees the adapted ViT tokens, and every adapter gets the same last-stage map.
 * It lives beside LLaVA-HR's model, not in methods/: the adapters are layers of that model's vision tower, built by
 * its loader, and models/ must not import from methods/ above it (DESIGN.md: dependencies point down).
 */
import { InputError } from '../../errors.js';
import type { Value } from '../../graph/ir.js';
import * as op from '../../graph/ops/index.js';
import type { WeightScope } from '../../graph/weights.js';
import { conv2d } from '../convnext.js';
import { linear } from '../linear.js';

/**
 * Brings a square map [B, C, h, h] to the ViT's grid [B, C, grid, grid] as `src2dst_align` does: bilinear
 * upsampling (align_corners=True) when it has fewer cells, average pooling (kernel = stride = h / grid) when
 * it has more. The official code asserts that one cell count divides the other.
 */
export function alignToGrid(map: Value, grid: number): Value {
  const h = map.shape[2] as number;
  const [cells, tokens] = [h * h, grid * grid];
  if (!canAlign(h, grid)) {
    throw new InputError(`MRA: the ${h}×${h} high-resolution map cannot be aligned to the ${grid}×${grid} ViT grid (neither token count divides the other)`);
  }
  if (cells < tokens) return op.interpolateBilinearAlignCorners(map, [grid, grid]);
  if (cells > tokens) {
    const k = Math.floor(h / grid);
    return op.averagePool(map, { kernel: [k, k] });
  }
  return map;
}

/** Whether an h×h map can be brought to a grid×grid ViT (one cell count divides the other). */
export function canAlign(h: number, grid: number): boolean {
  return (h * h) % (grid * grid) === 0 || (grid * grid) % (h * h) === 0;
}

/** [B, C, g, g] → [B, g·g, C] (row-major cells). */
export function mapToTokens(map: Value): Value {
  return op.transpose(op.reshape(map, [0, 0, -1]), [0, 2, 1]);
}

/** [B, g·g, C] → [B, C, g, g]. */
function tokensToMap(tokens: Value, grid: number): Value {
  return op.reshape(op.transpose(tokens, [0, 2, 1]), [0, 0, grid, grid]);
}

export interface AdapterOutput {
  tokens: Value;
  /** tanh of the gate, [B, 1, 1]: how much of the high-resolution branch each image takes. */
  gateTanh: Value;
}

/**
 * One MR-Adapter (`S2FStitchAlignModuleV2`, weights `align_stages_latent.a.*` in `scope`). fast: ViT tokens
 * [B, grid², C_f]; slow: the high-resolution map [B, C_s, h, h].
 *   Hs = align(slow_proj(GELU(slow_conv(slow))))                    (1×1 convs: a per-cell MLP)
 *   F2 = F + fast_proj(GELU(fast_conv(F)))                           (F as a map; depthwise 7×7 then 1×1)
 *   g  = gate.2(GELU(gate.0(mean over tokens of [F2, Hs])))          (one scalar per image)
 *   → F2 + tanh(g) · Hs
 */
export function mrAdapter(scope: WeightScope, fast: Value, slow: Value, grid: number): AdapterOutput {
  const high = mapToTokens(alignToGrid(conv2d(scope.at('slow_proj'), op.gelu(conv2d(scope.at('slow_conv'), slow))), grid));
  const fastMap = tokensToMap(fast, grid);
  const pad = ((scope.shape('fast_conv.weight')[2] as number) - 1) / 2;
  const local = conv2d(scope.at('fast_conv'), fastMap, { pads: [pad, pad, pad, pad], group: scope.shape('fast_conv.weight')[0]! });
  const adapted = mapToTokens(op.add(fastMap, conv2d(scope.at('fast_proj'), op.gelu(local))));
  const gate = scope.at('gate');
  const pooled = op.reduceMean(op.concat([adapted, high], -1), [1]);
  const g = linear(gate.at(2), 'weight', op.gelu(linear(gate.at(0), 'weight', pooled, 'fp32', 'bias')), 'fp32', 'bias');
  const gateTanh = op.tanh(g);
  return { tokens: op.add(adapted, op.mul(high, gateTanh)), gateTanh };
}

/**
 * The final fusion (`MultiPathAlignModule`, `align_stages.0.*` in `scope`): fast_proj(F) + slow_proj(align(slow))
 * with the map aligned on its raw channels, then both Linear layers per token.
 */
export function mraFusion(scope: WeightScope, fast: Value, slow: Value, grid: number): Value {
  const high = mapToTokens(alignToGrid(slow, grid));
  return op.add(linear(scope, 'fast_proj.weight', fast, 'fp32', 'fast_proj.bias'), linear(scope, 'slow_proj.weight', high, 'fp32', 'slow_proj.bias'));
}
