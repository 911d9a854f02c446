/**
 * Pillow's `Image.resize` for 8-bit RGB images, bit-exact: a port of libImaging/Resample.c (Pillow 9.4,
 * unchanged in later releases). The official models were trained on Pillow's output, so every detail
 * matters: support widened by the scale when shrinking (antialiasing), coefficients normalised in double
 * then rounded to 22-bit fixed point, horizontal pass first, each pass rounding and clamping to 8 bits,
 * and a pass skipped when its axis keeps its size.
 */
import type { RGBImage } from './image.js';

export type ResampleFilter = 'bicubic' | 'bilinear';

interface Filter {
  support: number;
  weight(x: number): number;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  // Keys cubic convolution with a = -0.5 (Resample.c bicubic_filter).
  bicubic: {
    support: 2,
    weight(x) {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight(x) {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

/** 32 bits minus 8 for the result and 2 for overshoot of negative lobes (Resample.c PRECISION_BITS). */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

/** Per output position: first input index, number of taps, and `ksize` fixed-point weights. */
interface Coefficients {
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
}

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc for the full-image box (in0 = 0, in1 = inSize). */
function precomputeCoefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const invFilterScale = 1 / filterScale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts to int (truncation); negative values are clamped to 0 either way.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * invFilterScale);
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      // (int)(±0.5 + w * 2^22): round half away from zero by truncation.
      weights[xx * ksize + x] = Math.trunc((w < 0 ? -0.5 : 0.5) + w * (1 << PRECISION_BITS));
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, first, count, weights };
}

/** Resample.c clip8: drop the fraction (arithmetic shift, i.e. floor) and clamp to 0..255. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(src: Uint8Array, inWidth: number, height: number, outWidth: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(outWidth * height * 3);
  const { ksize, first, count, weights } = c;
  for (let y = 0; y < height; y++) {
    const rowIn = y * inWidth * 3;
    const rowOut = y * outWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      let r = HALF, g = HALF, b = HALF;
      const kBase = xx * ksize;
      let p = rowIn + first[xx] * 3;
      for (let i = 0, n = count[xx]; i < n; i++, p += 3) {
        const w = weights[kBase + i];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

function resampleVertical(src: Uint8Array, width: number, outHeight: number, c: Coefficients): Uint8Array {
  const rowLen = width * 3;
  const out = new Uint8Array(rowLen * outHeight);
  const acc = new Float64Array(rowLen);
  const { ksize, first, count, weights } = c;
  for (let yy = 0; yy < outHeight; yy++) {
    acc.fill(HALF);
    const kBase = yy * ksize;
    for (let i = 0, n = count[yy]; i < n; i++) {
      const w = weights[kBase + i];
      const rowIn = (first[yy] + i) * rowLen;
      for (let x = 0; x < rowLen; x++) acc[x] += src[rowIn + x] * w;
    }
    const rowOut = yy * rowLen;
    for (let x = 0; x < rowLen; x++) out[rowOut + x] = clip8(acc[x]);
  }
  return out;
}

/** `img.resize((width, height), Image.BICUBIC | Image.BILINEAR)` exactly as Pillow computes it. */
export function resizePillow(img: RGBImage, width: number, height: number, filter: ResampleFilter): RGBImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize target must be positive integers, got ${width}x${height}`);
  }
  const f = FILTERS[filter];
  let data = img.data;
  if (width !== img.width) {
    data = resampleHorizontal(data, img.width, img.height, width, precomputeCoefficients(img.width, width, f));
  }
  if (height !== img.height) {
    data = resampleVertical(data, width, height, precomputeCoefficients(img.height, height, f));
  }
  return { width, height, data: data === img.data ? data.slice() : data };
}
