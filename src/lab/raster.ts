/**
 * Drawing the lab's images: 8-bit RGB canvases, shapes drawn as SVG (rendered by sharp's librsvg), text masks
 * blended in a colour, noise, and PNG output. Every step is deterministic for the same inputs and sharp build.
 */
import sharp, { type KernelEnum, type Sharp } from 'sharp';
import type { RGB, RGBImage } from '../vision/image.js';
import type { Mask } from './font.js';
import type { Rng } from './random.js';

export type Kernel = keyof KernelEnum;

/** An axis-aligned box in pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export function boxesOverlap(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

export function growBox(box: Box, margin: number): Box {
  return { x: box.x - margin, y: box.y - margin, width: box.width + 2 * margin, height: box.height + 2 * margin };
}

/** A vertical gradient from `top` to `bottom` (equal colours: a flat fill). */
export function gradientCanvas(width: number, height: number, top: RGB, bottom: RGB): RGBImage {
  const data = new Uint8Array(width * height * 3);
  const row = new Uint8Array(width * 3);
  for (let y = 0; y < height; y++) {
    const t = height > 1 ? y / (height - 1) : 0;
    for (let c = 0; c < 3; c++) {
      const v = Math.round(top[c]! + (bottom[c]! - top[c]!) * t);
      for (let x = 0; x < width; x++) row[x * 3 + c] = v;
    }
    data.set(row, y * width * 3);
  }
  return { width, height, data };
}

/** `colour` blended over the canvas through `mask` (coverage × opacity), its top-left corner at (x, y). */
export function blendMask(img: RGBImage, mask: Mask, x: number, y: number, colour: RGB, opacity = 1): void {
  for (let my = 0; my < mask.height; my++) {
    const iy = y + my;
    if (iy < 0 || iy >= img.height) continue;
    for (let mx = 0; mx < mask.width; mx++) {
      const ix = x + mx;
      const coverage = mask.data[my * mask.width + mx]!;
      if (ix < 0 || ix >= img.width || coverage === 0) continue;
      const a = (coverage / 255) * opacity;
      const at = (iy * img.width + ix) * 3;
      for (let c = 0; c < 3; c++) img.data[at + c] = Math.round(img.data[at + c]! * (1 - a) + colour[c]! * a);
    }
  }
}

/** An SVG drawing of the canvas's size rendered and composited over it (alpha blending). */
export async function drawSvg(img: RGBImage, body: string): Promise<void> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width}" height="${img.height}">${body}</svg>`;
  const { data } = await sharp(Buffer.from(svg), { density: 72 }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  for (let p = 0; p < img.width * img.height; p++) {
    const a = data[p * 4 + 3]! / 255;
    if (a === 0) continue;
    for (let c = 0; c < 3; c++) img.data[p * 3 + c] = Math.round(img.data[p * 3 + c]! * (1 - a) + data[p * 4 + c]! * a);
  }
}

/** Gaussian noise of standard deviation `sigma` (0..255 scale) in brightness, the same on the three channels. */
export function addNoise(img: RGBImage, sigma: number, rng: Rng): void {
  for (let p = 0; p < img.data.length; p += 3) {
    const n = sigma * rng.normal();
    for (let c = 0; c < 3; c++) img.data[p + c] = clampByte(img.data[p + c]! + n);
  }
}

/** `mask` made darker or lighter: coverage ** gamma (gamma > 1 thins strokes, < 1 thickens them). */
export function gammaMask(mask: Mask, gamma: number): Mask {
  const data = mask.data.map((v) => Math.round(255 * (v / 255) ** gamma));
  return { ...mask, data };
}

/**
 * A mask rotated by `angle` degrees (clockwise, about its centre, on a canvas that grows to hold it), then shrunk
 * by `shrink` with `kernel` after `offset` pixels of padding on the left and top (a sub-pixel shift once shrunk).
 */
export async function transformMask(mask: Mask, angle: number, shrink: number, kernel: Kernel, offset: [number, number]): Promise<Mask> {
  const black = { r: 0, g: 0, b: 0 };
  const rotated = angle === 0 ? mask : await toMask(maskImage(mask).rotate(angle, { background: black }));
  if (shrink === 1) return rotated;
  // Two passes: sharp resizes before it extends within one pipeline.
  const width = Math.ceil((rotated.width + offset[0]) / shrink) * shrink;
  const height = Math.ceil((rotated.height + offset[1]) / shrink) * shrink;
  const padded = await toMask(maskImage(rotated).extend({
    left: offset[0], top: offset[1], right: width - rotated.width - offset[0], bottom: height - rotated.height - offset[1], background: black,
  }));
  return toMask(maskImage(padded).resize(width / shrink, height / shrink, { kernel, fit: 'fill' }));
}

function maskImage(mask: Mask): Sharp {
  return sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } });
}

async function toMask(image: Sharp): Promise<Mask> {
  const { data, info } = await image.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The box of the mask's pixels of at least half coverage, or undefined when there are none. */
export function inkBox(mask: Mask): Box | undefined {
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (mask.data[y * mask.width + x]! < 128) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x);
      y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  }
  return x1 < 0 ? undefined : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** A Gaussian blur of standard deviation `sigma` pixels (sharp needs at least 0.3). */
export async function blur(img: RGBImage, sigma: number): Promise<RGBImage> {
  return fromSharp(sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).blur(sigma));
}

/** The image after a JPEG encode and decode at `quality`: compression artefacts. */
export async function jpegRoundTrip(img: RGBImage, quality: number): Promise<RGBImage> {
  const jpeg = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).jpeg({ quality }).toBuffer();
  return fromSharp(sharp(jpeg));
}

export async function encodePng(img: RGBImage): Promise<Uint8Array> {
  const png = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.length);
}

async function fromSharp(image: Sharp): Promise<RGBImage> {
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

function clampByte(v: number): number {
  return Math.min(255, Math.max(0, Math.round(v)));
}

/** A colour as SVG writes it. */
export function svgColour([r, g, b]: RGB): string {
  return `rgb(${r},${g},${b})`;
}

/** HSL (hue in degrees, saturation and lightness in 0..1) to 8-bit RGB. */
export function hsl(h: number, s: number, l: number): RGB {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}

/** Rec. 601 luma of a colour, 0..255. */
export function luma([r, g, b]: RGB): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}
