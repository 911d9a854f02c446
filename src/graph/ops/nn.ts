import type { AttrValue, Value } from '../ir.js';
import { axisOf, fail, sameDim } from '../shape.js';
import type { Dim } from '../types.js';
import { add, mul, reciprocal, sqrt } from './elementwise.js';
import { reduceMean } from './reduce.js';
import { ints } from './tensor.js';

export function softmax(x: Value, axis = -1): Value {
  return x.graph.node('Softmax', [x], [{ type: x.type, shape: x.shape }], { axis: axisOf('Softmax', x, axis) })[0]!;
}

export function logSoftmax(x: Value, axis = -1): Value {
  return x.graph.node('LogSoftmax', [x], [{ type: x.type, shape: x.shape }], { axis: axisOf('LogSoftmax', x, axis) })[0]!;
}

/** LayerNorm over the last dims covered by `scale` (ONNX LayerNormalization, computed in the input type). */
export function layerNorm(x: Value, scale: Value, bias: Value | null, epsilon: number): Value {
  const axis = x.rank - scale.rank;
  scale.shape.forEach((d, i) => {
    if (sameDim(d, x.shape[axis + i]!) === false) fail('LayerNormalization', [x, scale], 'scale does not match the normalised dims');
  });
  return x.graph.node('LayerNormalization', bias ? [x, scale, bias] : [x, scale], [{ type: x.type, shape: x.shape }],
    { axis, epsilon: { float: epsilon } })[0]!;
}

/**
 * RMSNorm as LLaMA computes it (transformers LlamaRMSNorm): x · rsqrt(mean(x²) + eps) · weight. Written out so
 * that ORT's optimiser fuses it into SimplifiedLayerNormalization.
 */
export function rmsNorm(x: Value, weight: Value, epsilon: number): Value {
  if (sameDim(x.dim(-1), weight.dim(-1)) === false) fail('RMSNorm', [x, weight], 'weight does not match the last dim');
  const meanSquare = reduceMean(mul(x, x), [-1]);
  return mul(mul(x, reciprocal(sqrt(add(meanSquare, epsilon)))), weight);
}

export interface ConvOptions {
  strides?: number[];
  pads?: number[]; // [top, left, bottom, right] for 2-D
  dilations?: number[];
  group?: number;
}

/** Conv options with ONNX's defaults filled in for `spatial` dims. */
export function convDefaults(opts: ConvOptions, spatial: number): Required<ConvOptions> {
  return {
    group: opts.group ?? 1,
    strides: opts.strides ?? Array(spatial).fill(1),
    dilations: opts.dilations ?? Array(spatial).fill(1),
    pads: opts.pads ?? Array(spatial * 2).fill(0),
  };
}

/** Output dims of a conv-like op: batch, `channels`, then `size(input dim, kernel dim, i)` per known spatial dim. */
function convShape(opType: string, x: Value, w: Value, channels: Dim, size: (d: number, k: number, i: number) => number): Dim[] {
  if (w.rank !== x.rank) fail(opType, [x, w], 'weight rank must equal input rank');
  return [x.shape[0]!, channels, ...x.shape.slice(2).map((d, i) => (typeof d === 'number' ? size(d, w.shape[2 + i] as number, i) : x.graph.fresh('conv_dim')))];
}

/** N-d convolution, x [N, C, ...] with w [M, C / group, ...kernel]. */
export function conv(x: Value, w: Value, bias: Value | null, opts: ConvOptions = {}): Value {
  const spatial = x.rank - 2;
  const { group, strides, dilations, pads } = convDefaults(opts, spatial);
  const c = x.shape[1]!;
  const wc = w.shape[1]!;
  if (typeof c === 'number' && typeof wc === 'number' && c !== wc * group) {
    fail('Conv', [x, w], `input channels ${c} ≠ weight channels ${wc} × group ${group}`);
  }
  const shape = convShape('Conv', x, w, w.shape[0]!, (d, k, i) =>
    Math.floor((d + pads[i]! + pads[i + spatial]! - dilations[i]! * (k - 1) - 1) / strides[i]!) + 1);
  const attrs = { strides, pads, dilations, group, kernel_shape: w.shape.slice(2) as number[] };
  return x.graph.node('Conv', bias ? [x, w, bias] : [x, w], [{ type: x.type, shape }], attrs)[0]!;
}

/**
 * The transposed convolution of `conv` with the same options: x [N, M, ...] and w [M, C / group, ...kernel]
 * (conv's own weight) give [N, C, ...]; `outputPadding` adds to the end of each spatial dim, picking among the
 * sizes a strided conv maps to the same output size.
 */
export function convTranspose(x: Value, w: Value, opts: ConvOptions & { outputPadding?: number[] } = {}): Value {
  const spatial = x.rank - 2;
  const { group, strides, dilations, pads } = convDefaults(opts, spatial);
  const outputPadding = opts.outputPadding ?? Array(spatial).fill(0);
  if (sameDim(x.shape[1]!, w.shape[0]!) === false) fail('ConvTranspose', [x, w], 'input channels differ from the weight\'s first dim');
  const wc = w.shape[1]!;
  const shape = convShape('ConvTranspose', x, w, typeof wc === 'number' ? wc * group : x.graph.fresh('conv_dim'), (d, k, i) =>
    (d - 1) * strides[i]! + dilations[i]! * (k - 1) + 1 - pads[i]! - pads[i + spatial]! + outputPadding[i]!);
  const attrs = { strides, pads, dilations, group, kernel_shape: w.shape.slice(2) as number[], output_padding: outputPadding };
  return x.graph.node('ConvTranspose', [x, w], [{ type: x.type, shape }], attrs)[0]!;
}

export interface PoolOptions {
  kernel: number[];
  strides?: number[];
  pads?: number[];
  /** AveragePool only: whether padding counts in the average (PyTorch's count_include_pad). */
  countIncludePad?: boolean;
  ceilMode?: boolean;
}

function pool(op: 'AveragePool' | 'MaxPool', x: Value, opts: PoolOptions): Value {
  const spatial = x.rank - 2;
  const strides = opts.strides ?? opts.kernel;
  const pads = opts.pads ?? Array(spatial * 2).fill(0);
  const round = opts.ceilMode ? Math.ceil : Math.floor;
  const shape: Dim[] = [x.shape[0]!, x.shape[1]!];
  for (let i = 0; i < spatial; i++) {
    const d = x.shape[2 + i]!;
    shape.push(typeof d === 'number' ? round((d + pads[i]! + pads[i + spatial]! - opts.kernel[i]!) / strides[i]!) + 1 : x.graph.fresh('pool_dim'));
  }
  const attrs: Record<string, number | number[]> = { kernel_shape: opts.kernel, strides, pads, ceil_mode: opts.ceilMode ? 1 : 0 };
  if (op === 'AveragePool') attrs['count_include_pad'] = opts.countIncludePad ? 1 : 0;
  return x.graph.node(op, [x], [{ type: x.type, shape }], attrs)[0]!;
}

export const averagePool = (x: Value, opts: PoolOptions) => pool('AveragePool', x, opts);
export const maxPool = (x: Value, opts: PoolOptions) => pool('MaxPool', x, opts);

export function globalAveragePool(x: Value): Value {
  return x.graph.node('GlobalAveragePool', [x], [{ type: x.type, shape: [...x.shape.slice(0, 2), ...x.shape.slice(2).map(() => 1)] }])[0]!;
}

export interface ResizeOptions {
  mode: 'nearest' | 'linear' | 'cubic';
  /** How output coordinates map to input ones; PyTorch's align_corners=True is 'align_corners'. */
  coordinates: 'align_corners' | 'half_pixel' | 'pytorch_half_pixel' | 'asymmetric';
  /**
   * Widen the filter when downsampling, as torch's antialias=True does. Taps outside the image are dropped and
   * the weights renormalised (exclude_outside=1): with cubicCoeffA -0.5 this equals PyTorch's
   * _upsample_bicubic2d_aa (checked against torch 1.13), which LLaVA-HR uses to resample position embeddings.
   */
  antialias?: boolean;
  /** Cubic coefficient: -0.75 matches PyTorch's bicubic (ONNX's default too). */
  cubicCoeffA?: number;
}

/** Resizes the trailing spatial dims of x [N, C, H, W] to `size` (ONNX Resize, opset ≥ 18 for antialias). */
export function resize(x: Value, size: readonly number[], opts: ResizeOptions): Value {
  if (size.length !== x.rank - 2) fail('Resize', [x], `size ${JSON.stringify(size)} must give every spatial dim`);
  const axes = size.map((_, i) => i + 2);
  const attrs: Record<string, AttrValue> = {
    mode: opts.mode,
    coordinate_transformation_mode: opts.coordinates,
    antialias: opts.antialias ? 1 : 0,
    exclude_outside: opts.antialias ? 1 : 0,
    cubic_coeff_a: { float: opts.cubicCoeffA ?? -0.75 },
    axes,
  };
  if (opts.mode === 'nearest') attrs['nearest_mode'] = 'floor';
  return x.graph.node('Resize', [x, null, null, ints(x, size)], [{ type: x.type, shape: [...x.shape.slice(0, 2), ...size] }], attrs)[0]!;
}
