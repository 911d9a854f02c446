/**
 * Image files to RGB, as the official pipelines see them: `Image.open(f).convert('RGB')` in Pillow 9.4.
 * PNG, JPEG and WebP are decoded by sharp (libvips: libspng, libjpeg-turbo/mozjpeg, libwebp), whose 8-bit
 * output equals Pillow's; the cases where Pillow's conversion differs from libvips' are done here:
 * CMYK JPEG (Pillow's arithmetic, no ICC transform), 16-bit greyscale PNG (Pillow's mode I, clipped), and
 * GIF (own decoder, gif.ts). Alpha is dropped without compositing; no EXIF rotation; ICC profiles ignored.
 */
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { decodeGifFirstFrame } from './gif.js';
import type { RGBImage } from './image.js';
import { checkBytes, checkPixels, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, type ImageLimits } from './limits.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

export interface DecodeOptions extends ImageLimits {
  /** Names the input in error messages (a file path); default "image". */
  name?: string;
}

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));

/** The format from the file's signature, whatever its name says. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && ascii(bytes, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 6 && /^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return 'gif';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/** One line naming the input, from a libvips message (which may span lines). */
function decodeError(name: string, err: unknown): InputError {
  const message = err instanceof Error ? err.message : String(err);
  const line = message.split('\n').map((s) => s.trim()).find((s) => s !== '') ?? 'unknown error';
  return new InputError(`${name}: cannot decode image: ${line}`);
}

/**
 * Pillow's CMYK -> RGB (libImaging/Convert.c cmyk2rgb): r = nk - nk*c/255 rounded as MULDIV255, nk = 255 - k.
 * libvips, like Pillow's "CMYK;I" rawmode, already un-inverts Adobe CMYK JPEGs.
 */
function cmykToRgb(cmyk: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const nk = 255 - cmyk[i * 4 + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c] * nk + 128;
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8); // never negative: MULDIV255(x, nk) <= nk
    }
  }
  return out;
}

/** Grey, grey+alpha, RGB or RGBA samples (8-bit) to RGB: grey replicated, alpha dropped (no compositing). */
function toRgb(samples: Uint8Array | Uint16Array, channels: number, pixels: number, clip: (v: number) => number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const s = i * channels;
    if (channels >= 3) {
      out[i * 3] = clip(samples[s]);
      out[i * 3 + 1] = clip(samples[s + 1]);
      out[i * 3 + 2] = clip(samples[s + 2]);
    } else {
      out.fill(clip(samples[s]), i * 3, i * 3 + 3);
    }
  }
  return out;
}

/** PNG colour type 0 (greyscale) at bit depth 16, from IHDR: Pillow opens it as mode I ("I;16B"). */
function isGrey16Png(bytes: Uint8Array): boolean {
  return bytes.length > 25 && bytes[24] === 16 && bytes[25] === 0;
}

/** Decodes PNG, JPEG (baseline, progressive, CMYK), WebP or GIF (first frame) bytes to 8-bit RGB. */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RGBImage> {
  const name = options.name ?? 'image';
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new InputError(`${name}: empty file, not an image`);
  checkBytes(bytes.length, options.maxBytes ?? DEFAULT_MAX_BYTES, name);
  const format = sniffImageFormat(bytes);
  if (!format) throw new InputError(`${name}: not a PNG, JPEG, WebP or GIF image`);
  if (format === 'gif') return decodeGifFirstFrame(bytes, name, maxPixels);

  // failOn 'error': refuse truncated and corrupt data, as Pillow does (LOAD_TRUNCATED_IMAGES is off).
  // The header is read without sharp's own pixel limit so that the check below names the sizes.
  const open = (limitInputPixels: number | false = maxPixels) =>
    sharp(bytes, { failOn: 'error', limitInputPixels, ignoreIcc: true, autoOrient: false, page: 0, pages: 1 });
  try {
    const meta = await open(false).metadata();
    checkPixels(meta.width, meta.height, maxPixels, name);
    if (meta.space === 'cmyk') {
      const { data, info } = await open().pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, data: cmykToRgb(data, info.width * info.height) };
    }
    if (format === 'png' && isGrey16Png(bytes)) {
      // Pillow's I -> RGB (Convert.c i2rgb) clamps each value to 0..255, it does not scale.
      const { data, info } = await open().toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      const samples = new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)); // aligned copy
      return { width: info.width, height: info.height, data: toRgb(samples, info.channels, info.width * info.height, (v) => Math.min(v, 255)) };
    }
    // 16-bit PNGs come out as their most significant bytes, Pillow's "RGB;16B"-style rawmodes.
    const { data, info } = await open().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: toRgb(data, info.channels, info.width * info.height, (v) => v) };
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw decodeError(name, err);
  }
}

/** Reads and decodes an image file, refusing an oversized file before reading it. */
export async function loadImage(path: string, limits: ImageLimits = {}): Promise<RGBImage> {
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new InputError(`${path}: not a file`);
    checkBytes(info.size, limits.maxBytes ?? DEFAULT_MAX_BYTES, path);
    bytes = await readFile(path);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${path}: cannot read image (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return decodeImage(bytes, { ...limits, name: path });
}
