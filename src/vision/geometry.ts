/** Pad-to-square and centre crop, with the integer rounding of the official pipelines. */
import type { RGB, RGBImage } from './image.js';

/**
 * LLaVA's `expand2square` (llava/mm_utils.py): paste the image on a max(w, h) square filled with `fill`,
 * offset `(max - min) // 2` on the short axis. A square image is returned unchanged.
 */
export function expandToSquare(img: RGBImage, fill: RGB): RGBImage {
  const { width, height } = img;
  if (width === height) return img;
  const side = Math.max(width, height);
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i += 3) data.set(fill, i);
  const left = width < side ? (side - width) >> 1 : 0;
  const top = height < side ? (side - height) >> 1 : 0;
  for (let y = 0; y < height; y++) {
    data.set(img.data.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * side + left) * 3);
  }
  return { width: side, height: side, data };
}

/**
 * transformers' `center_crop` (image_transforms.py): `top = (H - h) // 2`, `left = (W - w) // 2`.
 * (torchvision's CenterCrop rounds instead; no pipeline here uses it.) The crop must fit inside the image.
 */
export function centerCrop(img: RGBImage, width: number, height: number): RGBImage {
  if (width > img.width || height > img.height) {
    throw new RangeError(`crop ${width}x${height} does not fit in a ${img.width}x${img.height} image`);
  }
  if (width === img.width && height === img.height) return img;
  const top = (img.height - height) >> 1;
  const left = (img.width - width) >> 1;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data };
}
