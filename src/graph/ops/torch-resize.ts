import type { Value } from '../ir.js';
import { fail } from '../shape.js';
import { add, mul } from './elementwise.js';
import { gather } from './tensor.js';

/**
 * torch.nn.functional.interpolate(x, size, mode='bilinear', align_corners=True) on x [N, C, H, W], with torch's
 * float32 arithmetic (aten/src/ATen/native/cpu/UpSampleKernel.cpp, torch 1.13): scale = float32(in − 1) /
 * float32(out − 1), src = scale · i (exact), i0 = floor(src), i1 = min(i0 + 1, in − 1), w1 = float32(src − i0), w0 = 1 − w1,
 * interpolated along W first and then along H, as torch nests them. ONNX Resize computes the source coordinates
 * its own way, which differs by up to ~1e-5 per value once inputs reach hundreds of pixels.
 */
export function interpolateBilinearAlignCorners(x: Value, size: readonly [number, number]): Value {
  const [h, w] = [x.shape[2], x.shape[3]];
  if (x.rank !== 4 || typeof h !== 'number' || typeof w !== 'number') fail('interpolateBilinear', [x], 'needs [N, C, H, W] with known H and W');
  const alongW = interpolateAxis(x, 3, w, size[1]);
  return interpolateAxis(alongW, 2, h, size[0]);
}

function interpolateAxis(x: Value, axis: 2 | 3, length: number, out: number): Value {
  if (length === out) return x;
  const g = x.graph;
  const scale = out > 1 ? Math.fround(Math.fround(length - 1) / Math.fround(out - 1)) : 0;
  const i0: bigint[] = [], i1: bigint[] = [], w0: number[] = [], w1: number[] = [];
  for (let i = 0; i < out; i++) {
    const src = scale * i;
    const lo = Math.min(Math.floor(src), length - 1);
    const frac = Math.fround(src - lo);
    i0.push(BigInt(lo));
    i1.push(BigInt(Math.min(lo + 1, length - 1)));
    w1.push(frac);
    w0.push(Math.fround(1 - frac));
  }
  const weightShape = axis === 3 ? [out] : [out, 1];
  const tap = (index: bigint[], weight: number[]) =>
    mul(gather(x, g.constant('int64', [out], index, 'resize_index'), axis), g.constant('float32', weightShape, weight, 'resize_weight'));
  return add(tap(i0, w0), tap(i1, w1));
}
