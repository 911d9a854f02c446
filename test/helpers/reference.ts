/**
 * Plain TypeScript reference implementations, written from the operators' definitions, for checking the graph
 * builder's ops numerically. Slow and obvious on purpose. Tensors are row-major Float64-accurate loops over
 * Float32Array data.
 */
import { seededRandom } from '../../src/generate/sampling.js';

export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** The seeded generator the engine samples with (mulberry32). */
export const rng = seededRandom;

/** Uniform values in [-scale, scale). */
export function random(shape: number[], seed: number, scale = 1): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() * 2 - 1) * scale;
  return { data, shape };
}

export const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = index % shape[i]!;
    index = Math.floor(index / shape[i]!);
  }
  return out;
}

/** Element of `t` at a broadcast index of an output of rank `rank`. */
function atBroadcast(t: Tensor, idx: readonly number[]): number {
  const off = idx.length - t.shape.length;
  const st = strides(t.shape);
  let flat = 0;
  for (let i = 0; i < t.shape.length; i++) flat += (t.shape[i] === 1 ? 0 : idx[off + i]!) * st[i]!;
  return t.data[flat]!;
}

export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

export function elementwise(inputs: Tensor[], f: (...xs: number[]) => number): Tensor {
  const shape = broadcastShape(...inputs.map((t) => t.shape));
  const data = new Float32Array(size(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = f(...inputs.map((t) => atBroadcast(t, idx)));
  }
  return { data, shape };
}

/** erf to ~1e-15 (a series for small |x|, a continued fraction for large), since JS has no Math.erf. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = 0;
    let term = ax;
    for (let n = 0; n < 80; n++) {
      sum += term / (2 * n + 1);
      term *= (-ax * ax) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc via Lentz's continued fraction.
  let f = ax, c = ax, d = 0;
  for (let n = 1; n < 200; n++) {
    const a = n / 2;
    d = ax + a * d; d = 1 / d;
    c = ax + a / c;
    f *= c * d;
  }
  const erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * f);
  return Math.sign(x) * (1 - erfc);
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  const m = a.shape.at(-2)!, k = a.shape.at(-1)!, n = b.shape.at(-1)!;
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const shape = [...batch, m, n];
  const data = new Float32Array(size(shape));
  const nb = size(batch);
  for (let bi = 0; bi < nb; bi++) {
    const idx = unravel(bi, batch);
    const aOff = batchOffset(a, idx) , bOff = batchOffset(b, idx);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[aOff + i * k + p]! * b.data[bOff + p * n + j]!;
      data[bi * m * n + i * n + j] = s;
    }
  }
  return { data, shape };
}

function batchOffset(t: Tensor, batchIdx: readonly number[]): number {
  const bshape = t.shape.slice(0, -2);
  const mat = t.shape.at(-2)! * t.shape.at(-1)!;
  const off = batchIdx.length - bshape.length;
  let flat = 0;
  const st = strides(bshape);
  for (let i = 0; i < bshape.length; i++) flat += (bshape[i] === 1 ? 0 : batchIdx[off + i]!) * st[i]!;
  return flat * mat;
}

/** Applies `f` to every 1-D row along the last axis. */
export function rows(t: Tensor, f: (row: Float64Array) => ArrayLike<number>): Tensor {
  const d = t.shape.at(-1)!;
  const data = new Float32Array(t.data.length);
  for (let r = 0; r < t.data.length / d; r++) {
    const row = Float64Array.from(t.data.subarray(r * d, (r + 1) * d));
    data.set(Array.from(f(row)), r * d);
  }
  return { data, shape: [...t.shape] };
}

export function softmaxRow(row: Float64Array): number[] {
  const max = Math.max(...row);
  const e = Array.from(row, (x) => Math.exp(x - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export function transpose(t: Tensor, perm: number[]): Tensor {
  const shape = perm.map((p) => t.shape[p]!);
  const st = strides(t.shape);
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    let src = 0;
    perm.forEach((p, j) => (src += idx[j]! * st[p]!));
    data[i] = t.data[src]!;
  }
  return { data, shape };
}

/** 2-D convolution, NCHW, weights [M, C/group, kh, kw], pads [top, left, bottom, right]. */
export function conv2d(x: Tensor, w: Tensor, bias: Float32Array | null, stride: number, pads: number[], group: number): Tensor {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  const oh = Math.floor((h + pads[0]! + pads[2]! - kh) / stride) + 1;
  const ow = Math.floor((wd + pads[1]! + pads[3]! - kw) / stride) + 1;
  const out = new Float32Array(n * m * oh * ow);
  const mPerGroup = m / group;
  for (let b = 0; b < n; b++) for (let o = 0; o < m; o++) {
    const gi = Math.floor(o / mPerGroup);
    for (let y = 0; y < oh; y++) for (let xo = 0; xo < ow; xo++) {
      let s = bias ? bias[o]! : 0;
      for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
        const iy = y * stride + ky - pads[0]!, ix = xo * stride + kx - pads[1]!;
        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
        s += x.data[((b * c + gi * cg + ci) * h + iy) * wd + ix]! * w.data[((o * cg + ci) * kh + ky) * kw + kx]!;
      }
      out[((b * m + o) * oh + y) * ow + xo] = s;
    }
  }
  return { data: out, shape: [n, m, oh, ow] };
}

export type Filter = { support: number; f: (x: number) => number };

export const bilinearFilter: Filter = { support: 1, f: (x) => Math.max(0, 1 - Math.abs(x)) };
export function cubicFilter(a: number): Filter {
  return {
    support: 2,
    f: (x) => {
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  };
}

/**
 * Separable resize of one axis, from the definitions: output coordinate → input coordinate by the transform,
 * taps of the filter; with antialias, the filter is widened by 1/scale when shrinking and taps outside the
 * image are dropped and the weights renormalised; without, taps are clamped to the edge (replicate).
 */
export function resizeAxis(src: Float64Array, out: number, filter: Filter, mode: 'align_corners' | 'half_pixel', antialias: boolean): Float64Array {
  const n = src.length;
  const scale = out / n;
  const res = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    const x = mode === 'align_corners' ? (out === 1 ? 0 : (i * (n - 1)) / (out - 1)) : (i + 0.5) / scale - 0.5;
    if (antialias && scale < 1) {
      const support = filter.support / scale;
      const lo = Math.max(0, Math.ceil(x - support)), hi = Math.min(n - 1, Math.floor(x + support));
      let s = 0, wsum = 0;
      for (let j = lo; j <= hi; j++) {
        const wgt = filter.f((j - x) * scale);
        s += wgt * src[j]!;
        wsum += wgt;
      }
      res[i] = s / wsum;
    } else {
      const base = Math.floor(x);
      let s = 0, wsum = 0;
      for (let j = base - filter.support + 1; j <= base + filter.support; j++) {
        const wgt = filter.f(j - x);
        s += wgt * src[Math.min(Math.max(j, 0), n - 1)]!;
        wsum += wgt;
      }
      res[i] = antialias ? s / wsum : s;
    }
  }
  return res;
}

/** Resizes the last two axes of [N, C, H, W]: width first, then height (separable). */
export function resize2d(x: Tensor, oh: number, ow: number, filter: Filter, mode: 'align_corners' | 'half_pixel', antialias: boolean): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const out = new Float32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    const tmp: Float64Array[] = [];
    for (let y = 0; y < h; y++) tmp.push(resizeAxis(Float64Array.from(x.data.subarray(p * h * w + y * w, p * h * w + (y + 1) * w)), ow, filter, mode, antialias));
    for (let xo = 0; xo < ow; xo++) {
      const col = resizeAxis(Float64Array.from(tmp, (r) => r[xo]!), oh, filter, mode, antialias);
      for (let y = 0; y < oh; y++) out[p * oh * ow + y * ow + xo] = col[y]!;
    }
  }
  return { data: out, shape: [n, c, oh, ow] };
}
