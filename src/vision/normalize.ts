/** Per-channel normalisation to the float32 CHW tensor a vision tower takes. */
import type { RGBImage } from './image.js';

export const CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/**
 * How 0..255 becomes 0..1, to the last float32 bit: transformers' `rescale` multiplies by 1/255 in float64
 * and casts to float32; torchvision's `ToTensor` divides a float32 tensor by 255.
 */
export type UnitScaling = 'times-reciprocal' | 'divide';

/**
 * `(x - mean) / std` per channel in float32 (both transformers' `normalize` and torchvision's `Normalize`
 * cast mean and std to float32 first), laid out CHW.
 */
export function normalize(img: RGBImage, mean: readonly number[], std: readonly number[], scaling: UnitScaling): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  const f = Math.fround;
  const toUnit = scaling === 'divide' ? (v: number) => f(v / 255) : (v: number) => f(v * (1 / 255));
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    // A lookup table per channel: 256 possible inputs.
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = f(toUnit(v) - m) / s;
    for (let i = 0; i < plane; i++) out[c * plane + i] = table[img.data[i * 3 + c]];
  }
  return out;
}
