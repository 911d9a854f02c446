/** Gradient rules of products, normalisations, softmax, convolution and pooling. */
import type { GradCall, GradRule } from './autodiff-context.js';
import type { Value } from './ir.js';
import * as op from './ops/index.js';

/** Swaps the last two axes. */
function swapLast(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1]!, perm[x.rank - 2]!];
  return op.transpose(x, perm);
}

/** [..., d] → [rows, d]. */
function rows(c: GradCall, x: Value, alive: readonly Value[]): Value {
  if (x.rank === 2) return x;
  const d = x.dim(-1);
  if (typeof d === 'number') return op.reshape(x, [-1, d]);
  return c.reshapeTo(x, c.shapes.join([-1n, c.shapes.dimOf(x, -1, alive)]), [c.graph.fresh('rows'), d]);
}

/**
 * y = a · b with b a matrix [K, N] (a linear layer's weight): both gradients are single 2-D products over every
 * row of a, and Gemm's transpose flags read b and a as they are (a transposed copy of a frozen weight would be
 * folded into the model by ORT and double its memory).
 */
function matmulByMatrix(c: GradCall, a: Value, b: Value, g: Value): (Value | undefined)[] {
  const g2 = rows(c, g, [b]);
  return c.each((i) => {
    if (i === 1) return op.gemm(rows(c, a, [g]), g2, undefined, { transA: true });
    const da = op.gemm(g2, b, undefined, { transB: true });
    return a.rank === 2 ? da : c.reshapeTo(da, c.shapes.shapeOf(a, [g, b], true), a.shape);
  });
}

/** numpy matmul in general: rank-1 operands become matrices, batch dims broadcast and are summed back. */
function matmulBatched(c: GradCall, a: Value, b: Value, g: Value): (Value | undefined)[] {
  const a2 = a.rank === 1 ? op.unsqueeze(a, [0]) : a;
  const b2 = b.rank === 1 ? op.unsqueeze(b, [-1]) : b;
  let g2 = g;
  if (a.rank === 1 && b.rank === 1) g2 = op.unsqueeze(g, [0, 1]);
  else if (a.rank === 1) g2 = op.unsqueeze(g, [-2]);
  else if (b.rank === 1) g2 = op.unsqueeze(g, [-1]);
  return c.each((i) => {
    if (i === 0) {
      const da = c.sumTo(op.matmul(g2, swapLast(b2)), a2);
      return a.rank === 1 ? op.squeeze(da, [0]) : da;
    }
    const db = c.sumTo(op.matmul(swapLast(a2), g2), b2);
    return b.rank === 1 ? op.squeeze(db, [-1]) : db;
  });
}

interface Geometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

/** Spatial geometry of a Conv or pool node, from its attributes (ONNX defaults filled in). */
function geometry(c: GradCall, kernel: number[]): Geometry {
  const attrs = c.node.attrs as op.ConvOptions;
  return { kernel, ...op.convDefaults({ strides: attrs.strides, dilations: attrs.dilations, pads: attrs.pads }, kernel.length) };
}

/**
 * ConvTranspose's output_padding that maps a strided output back to exactly the input's spatial size (the sizes a
 * strided conv maps to one output size differ in what the last window leaves over). Stride 1 leaves nothing over,
 * whatever the (possibly symbolic) sizes.
 */
function outputPadding(c: GradCall, x: Value, y: Value, geo: Geometry): number[] {
  return geo.kernel.map((k, i) => {
    if (geo.strides[i] === 1) return 0;
    const [d, o] = [x.shape[2 + i], y.shape[2 + i]];
    if (typeof d !== 'number' || typeof o !== 'number') throw c.error('a strided window needs known spatial dims');
    return d - ((o - 1) * geo.strides[i]! + geo.dilations[i]! * (k - 1) + 1 - geo.pads[i]! - geo.pads[i + geo.kernel.length]!);
  });
}

/**
 * d(loss)/dW of y = conv(x, W) with groups G: per group, the correlation of the input with the output gradient
 * over the batch. As one grouped Conv: input [Cg, G·N, ...] (the batch becomes channels), kernel dY [M, N, ...],
 * with strides and dilations swapped; its output [Cg, M, ...] is cut to the kernel size (padding may leave more
 * with strides > 1; with stride 1 it is exactly the kernel) and transposed to W's [M, Cg, ...].
 */
function convWeightGradient(c: GradCall, x: Value, w: Value, g: Value, geo: Geometry, group: number): Value {
  const spatial = x.shape.slice(2);
  const axes = spatial.map((_, i) => 2 + i);
  const cg = w.shape[1] as number;
  const dims = spatial.map((_, i) => c.shapes.dimOf(x, 2 + i, [g]));
  const perGroup = c.reshapeTo(x, c.shapes.join([c.shapes.dimOf(x, 0, [g]), BigInt(group), BigInt(cg), ...dims]), [x.shape[0]!, group, cg, ...spatial]);
  const input = c.reshapeTo(op.transpose(perGroup, [2, 1, 0, ...axes.map((a) => a + 1)]), c.shapes.join([BigInt(cg), -1n, ...dims]),
    [cg, c.graph.fresh('batch_groups'), ...spatial]);
  const kernel = op.transpose(g, [1, 0, ...axes]);
  const strided = geo.strides.some((s) => s !== 1);
  const outSpatial = strided ? spatial.map((d, i) => {
    const k = kernel.shape[2 + i]!;
    if (typeof d !== 'number' || typeof k !== 'number') throw c.error('a strided window needs known spatial dims');
    return Math.floor((d + geo.pads[i]! + geo.pads[i + spatial.length]! - geo.strides[i]! * (k - 1) - 1) / geo.dilations[i]!) + 1;
  }) : geo.kernel;
  // kernel_shape is left to ORT: the kernel here is the output gradient, whose spatial dims may be symbolic.
  let dw = c.graph.node('Conv', [input, kernel], [{ type: x.type, shape: [cg, w.shape[0]!, ...outSpatial] }],
    { strides: geo.dilations, dilations: geo.strides, pads: geo.pads, group })[0]!;
  if (outSpatial.some((d, i) => d !== geo.kernel[i])) dw = op.slice(dw, axes, axes.map(() => 0), geo.kernel);
  return op.transpose(dw, [1, 0, ...axes]);
}

export const nnRules: Record<string, GradRule> = {
  MatMul: (c) => {
    const [a, b] = [c.input(0), c.input(1)];
    return a.rank >= 2 && b.rank === 2 ? matmulByMatrix(c, a, b, c.grad()) : matmulBatched(c, a, b, c.grad());
  },
  // y = α·op(A)·op(B) + β·C.
  Gemm: (c) => {
    const [a, b, g] = [c.input(0), c.input(1), c.grad()];
    const transA = c.attr<number>('transA', 0) === 1, transB = c.attr<number>('transB', 0) === 1;
    const alpha = c.attr('alpha', { float: 1 }).float, beta = c.attr('beta', { float: 1 }).float;
    return c.each((i) => {
      if (i === 0) return transA ? op.gemm(b, g, undefined, { transA: transB, transB: true, alpha }) : op.gemm(g, b, undefined, { transB: !transB, alpha });
      if (i === 1) return transB ? op.gemm(g, a, undefined, { transA: true, transB: transA, alpha }) : op.gemm(a, g, undefined, { transA: !transA, alpha });
      return c.sumTo(beta === 1 ? g : op.mul(g, beta), c.input(2));
    });
  },
  // dx = y ⊙ (dy − Σ dy ⊙ y).
  Softmax: (c) => {
    const [y, g, axis] = [c.outputs[0]!, c.grad(), c.attr('axis', -1)];
    return [op.mul(y, op.sub(g, op.reduceSum(op.mul(g, y), [axis], true)))];
  },
  // dx = dy − exp(y) ⊙ Σ dy.
  LogSoftmax: (c) => {
    const [y, g, axis] = [c.outputs[0]!, c.grad(), c.attr('axis', -1)];
    return [op.sub(g, op.mul(op.exp(y), op.reduceSum(g, [axis], true)))];
  },
  /**
   * x̂ = (x − μ)·r with r = 1/√(σ² + ε) over the trailing axes from `axis`: dscale = Σ dy ⊙ x̂, dbias = Σ dy,
   * dx = r ⊙ (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)) with dx̂ = dy ⊙ scale. μ and r are recomputed from x.
   */
  LayerNormalization: (c) => {
    const [x, scale, g] = [c.input(0), c.input(1), c.grad()];
    const first = c.attr('axis', -1);
    const axes = Array.from({ length: x.rank - (first < 0 ? first + x.rank : first) }, (_, i) => x.rank - 1 - i).reverse();
    const eps = c.attr('epsilon', { float: 1e-5 }).float;
    const centred = op.sub(x, op.reduceMean(x, axes, true));
    const r = op.reciprocal(op.sqrt(op.add(op.reduceMean(op.mul(centred, centred), axes, true), eps)));
    const xhat = op.mul(centred, r);
    return c.each((i) => {
      if (i === 1) return c.sumTo(op.mul(g, xhat), scale);
      if (i === 2) return c.sumTo(g, c.input(2));
      const dxhat = op.mul(g, scale);
      const inner = op.sub(op.sub(dxhat, op.reduceMean(dxhat, axes, true)), op.mul(xhat, op.reduceMean(op.mul(dxhat, xhat), axes, true)));
      return op.mul(r, inner);
    });
  },
  Conv: (c) => {
    const [x, w, g, y] = [c.input(0), c.input(1), c.grad(), c.outputs[0]!];
    const geo = geometry(c, w.shape.slice(2) as number[]);
    const group = c.attr('group', 1);
    return c.each((i) => {
      if (i === 0) return op.convTranspose(g, w, { ...geo, group, outputPadding: outputPadding(c, x, y, geo) });
      if (i === 1) return convWeightGradient(c, x, w, g, geo, group);
      return op.reduceSum(g, g.shape.map((_, a) => a).filter((a) => a !== 1), false);
    });
  },
  /** A linear map: the transposed depthwise convolution of dy with the averaging window. */
  AveragePool: (c) => {
    const [x, g, y] = [c.input(0), c.grad(), c.outputs[0]!];
    if (c.attr('ceil_mode', 0)) throw c.error('ceil_mode is not supported');
    const geo = geometry(c, c.attr('kernel_shape', [] as number[]));
    const channels = x.shape[1];
    if (typeof channels !== 'number') throw c.error('needs a known channel count');
    const window = geo.kernel.reduce((a, b) => a * b, 1);
    // Windows that overlap padding average fewer values when count_include_pad is 0: divide by each one's count.
    const excludePad = !c.attr('count_include_pad', 0) && geo.pads.some((p) => p !== 0);
    let scaled = g;
    if (excludePad) {
      const ones = c.graph.constant(x.type, [1, channels, ...x.shape.slice(2) as number[]], new Array(channels * (x.shape.slice(2) as number[]).reduce((a, b) => a * b, 1)).fill(1), 'ones');
      const fraction = op.averagePool(ones, { kernel: geo.kernel, strides: geo.strides, pads: geo.pads, countIncludePad: true });
      scaled = op.div(g, op.mul(fraction, window));
    }
    const weight = c.graph.constant(x.type, [channels, 1, ...geo.kernel], new Array(channels * window).fill(excludePad ? 1 : 1 / window), 'pool_window');
    return [op.convTranspose(scaled, weight, { ...geo, group: channels, outputPadding: outputPadding(c, x, y, geo) })];
  },
  GlobalAveragePool: (c) => {
    const [x, g] = [c.input(0), c.grad()];
    const spatial = x.shape.slice(2).map((_, i) => 2 + i);
    return [op.div(c.expandTo(g, c.shapes.shapeOf(x, [g]), x.shape), c.elements(x, spatial))];
  },
};
