import { InputError } from '../errors.js';

/** Limits on untrusted image input, checked before any pixel is decoded. */
export interface ImageLimits {
  /** Most pixels (width x height) an image may declare; default Pillow's MAX_IMAGE_PIXELS, 89,478,485. */
  maxPixels?: number;
  /** Most bytes an image file may have; default 256 MiB. */
  maxBytes?: number;
}

// Pillow's Image.MAX_IMAGE_PIXELS, above which it warns of a decompression bomb (and refuses at twice that).
export const DEFAULT_MAX_PIXELS = 89_478_485;
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/** Decompression-bomb guard, shared by every format. */
export function checkPixels(width: number, height: number, maxPixels: number, name: string): void {
  if (width * height > maxPixels) {
    throw new InputError(`${name}: image is ${width}x${height} = ${width * height} pixels, above the limit of ${maxPixels} (possible decompression bomb)`);
  }
}

/** Refuses an input of more than maxBytes bytes, before it is read or decoded. */
export function checkBytes(size: number, maxBytes: number, name: string): void {
  if (size > maxBytes) throw new InputError(`${name}: ${size} bytes, above the image size limit of ${maxBytes} bytes`);
}
