/** The image preprocessing of each model family, as its official code runs it on a Pillow RGB image. */
import { centerCrop, expandToSquare } from './geometry.js';
import type { RGB, RGBImage } from './image.js';
import { CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, normalize } from './normalize.js';
import { resizePillow } from './resample.js';

/** A preprocessed image: the 8-bit pixels right before normalisation, and the float32 [3, H, W] model input. */
export interface Preprocessed {
  image: RGBImage;
  pixelValues: Float32Array;
}

/** LLaVA's pad colour: `tuple(int(x * 255) for x in image_processor.image_mean)` = (122, 116, 104). */
export const CLIP_PAD_FILL: RGB = [
  Math.trunc(CLIP_MEAN[0] * 255),
  Math.trunc(CLIP_MEAN[1] * 255),
  Math.trunc(CLIP_MEAN[2] * 255),
];

/**
 * transformers' `CLIPImageProcessor` (PIL backend): bicubic resize so the shortest edge is `size` (long edge
 * `int(size * long / short)`, get_resize_output_image_size), centre crop `crop` x `crop`, rescale by 1/255,
 * CLIP mean/std. This is llava-hf's processor and LLaVA's `image_aspect_ratio` other than 'pad'.
 */
export function clipImageProcessor(img: RGBImage, size: number, crop: number = size): Preprocessed {
  const short = Math.min(img.width, img.height);
  const long = Math.max(img.width, img.height);
  const longSize = Math.trunc((size * long) / short);
  const [w, h] = img.width <= img.height ? [size, longSize] : [longSize, size];
  const image = centerCrop(resizePillow(img, w, h, 'bicubic'), crop, crop);
  return { image, pixelValues: normalize(image, CLIP_MEAN, CLIP_STD, 'times-reciprocal') };
}

/**
 * LLaVA-1.5 with `image_aspect_ratio='pad'` (llava/mm_utils.py process_images): expand2square with the
 * CLIP pad colour, then `CLIPImageProcessor`. `size` is the vision tower's image size (336 for the
 * released models).
 */
export function preprocessLlavaPad(img: RGBImage, size: number): Preprocessed {
  return clipImageProcessor(expandToSquare(img, CLIP_PAD_FILL), size);
}

/**
 * LLaVA-HR (luogen1996/LLaVA-HR): the same pad-then-CLIPImageProcessor path, with the processor's size set
 * to the config's `input_image_size` (1024 for the released models), so the output is size x size.
 */
export function preprocessLlavaHr(img: RGBImage, inputImageSize = 1024): Preprocessed {
  return preprocessLlavaPad(img, inputImageSize);
}

/**
 * LaVIN (luogen1996/LaVIN, util/datasets.py and eval.py): `transforms.Resize((224, 224), interpolation=BICUBIC)`,
 * which on a PIL image is Pillow's resize straight to size x size (a tuple size: no aspect preservation, no
 * crop; OpenAI CLIP's own Resize + CenterCrop is not used), ToTensor (x / 255), Normalize with ImageNet mean/std.
 */
export function preprocessLavin(img: RGBImage, size = 224): Preprocessed {
  const image = resizePillow(img, size, size, 'bicubic');
  return { image, pixelValues: normalize(image, IMAGENET_MEAN, IMAGENET_STD, 'divide') };
}
