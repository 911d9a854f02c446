/**
 * The first frame of a GIF, as Pillow 9.4 loads it and `convert('RGB')` maps it (GifImagePlugin.py,
 * libImaging/GifDecode.c). Own decoder because libvips blanks transparent pixels, while Pillow keeps the
 * palette colour of the transparent index: the canvas is the logical screen (grown to fit the frame), filled
 * with the transparent index if the frame has one, else index 0; frame pixels are written as they are; the
 * palette (local, else global) maps indices, entries it lacks stay Pillow's grey ramp (i, i, i).
 */
import { InputError } from '../errors.js';
import type { RGBImage } from './image.js';
import { checkPixels } from './limits.js';

/** LZW codes are at most 12 bits (GIF89a spec, appendix F). */
const MAX_CODES = 4096;

class GifReader {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly name: string) {}

  u8(): number {
    if (this.pos >= this.bytes.length) throw truncated(this.name);
    return this.bytes[this.pos++];
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  take(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) throw truncated(this.name);
    this.pos += n;
    return this.bytes.subarray(this.pos - n, this.pos);
  }
  /** Data sub-blocks up to the terminator, concatenated. */
  subBlocks(): Uint8Array {
    const parts: Uint8Array[] = [];
    for (let size = this.u8(); size > 0; size = this.u8()) parts.push(this.take(size));
    return concat(parts);
  }
  /** Image data: like subBlocks, but a file cut short keeps its complete blocks (Pillow decodes those). */
  imageBlocks(): Uint8Array {
    const parts: Uint8Array[] = [];
    while (this.pos < this.bytes.length) {
      const size = this.bytes[this.pos];
      if (size === 0 || this.pos + 1 + size > this.bytes.length) break;
      parts.push(this.bytes.subarray(this.pos + 1, this.pos + 1 + size));
      this.pos += 1 + size;
    }
    return concat(parts);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function truncated(name: string): InputError {
  return new InputError(`${name}: truncated GIF image`);
}

/** Row order of a frame: interlaced GIFs store rows 0,8,16,… then 4,12,… then 2,6,… then 1,3,…. */
function rowOrder(height: number, interlaced: boolean): Int32Array {
  const rows = new Int32Array(height);
  if (!interlaced) return rows.map((_, i) => i);
  let i = 0;
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]] as const) {
    for (let y = start; y < height; y += step) rows[i++] = y;
  }
  return rows;
}

/**
 * GifDecode.c's LZW decoder: writes `count` palette indices through `put`, in stream order. Stops at the
 * last pixel (trailing codes are ignored, as Pillow does); an end code or the data running out before it
 * is an error, as is a code the table cannot hold yet.
 */
function decodeLzw(stream: Uint8Array, minCodeSize: number, count: number, put: (k: number, index: number) => void, name: string): void {
  if (minCodeSize > 11) throw new InputError(`${name}: corrupt GIF data (LZW code size ${minCodeSize})`);
  const clear = 1 << minCodeSize;
  const end = clear + 1;
  const prefix = new Uint16Array(MAX_CODES);
  const suffix = new Uint8Array(MAX_CODES);
  const stack = new Uint8Array(MAX_CODES);
  let next = 0, codeSize = 0, codeMask = 0;
  let afterClear = true, lastCode = 0, lastRoot = 0;
  let bits = 0, bitCount = 0, pos = 0, k = 0;
  const reset = () => {
    next = clear + 2;
    codeSize = minCodeSize + 1;
    codeMask = (1 << codeSize) - 1;
    afterClear = true;
  };
  const broken = () => new InputError(`${name}: corrupt GIF data`);
  reset();
  while (k < count) {
    while (bitCount < codeSize) {
      if (pos >= stream.length) throw truncated(name);
      bits |= stream[pos++] << bitCount;
      bitCount += 8;
    }
    let code = bits & codeMask;
    bits >>>= codeSize;
    bitCount -= codeSize;
    if (code === clear) {
      reset();
      continue;
    }
    if (code === end) throw truncated(name);
    if (afterClear) {
      if (code > clear) throw broken();
      lastRoot = lastCode = code;
      afterClear = false;
      put(k++, code);
      continue;
    }
    const thisCode = code;
    if (code > next) throw broken();
    let n = 0;
    if (code === next) {
      stack[n++] = lastRoot;
      code = lastCode;
    }
    while (code >= clear) {
      stack[n++] = suffix[code];
      code = prefix[code];
    }
    lastRoot = code;
    put(k++, code);
    while (n > 0 && k < count) put(k++, stack[--n]);
    if (next < MAX_CODES) {
      suffix[next] = code;
      prefix[next] = lastCode;
      if (next === codeMask && codeSize < 12) {
        codeSize++;
        codeMask = (1 << codeSize) - 1;
      }
      next++;
    }
    lastCode = thisCode;
  }
}

/** Decodes the first frame of a GIF to RGB; `maxPixels` is checked on the header's sizes before decoding. */
export function decodeGifFirstFrame(bytes: Uint8Array, name: string, maxPixels: number): RGBImage {
  const r = new GifReader(bytes, name);
  r.take(6); // "GIF87a" / "GIF89a", checked by the caller
  let width = r.u16();
  let height = r.u16();
  const screenFlags = r.u8();
  r.take(2); // background index, aspect ratio
  let palette = screenFlags & 0x80 ? r.take(3 << ((screenFlags & 7) + 1)) : undefined;
  let transparency: number | undefined;
  for (;;) {
    const tag = r.u8();
    if (tag === 0x3b) throw new InputError(`${name}: GIF file has no image`);
    if (tag === 0x21) {
      const label = r.u8();
      const block = r.subBlocks();
      // Graphic control extension: bit 0 of the flags says whether byte 3 is a transparent index.
      if (label === 0xf9 && block.length >= 4 && block[0] & 1) transparency = block[3];
      continue;
    }
    if (tag !== 0x2c) continue; // Pillow skips unknown bytes between blocks
    const x0 = r.u16(), y0 = r.u16(), frameWidth = r.u16(), frameHeight = r.u16();
    const flags = r.u8();
    if (flags & 0x80) palette = r.take(3 << ((flags & 7) + 1));
    width = Math.max(width, x0 + frameWidth);
    height = Math.max(height, y0 + frameHeight);
    checkPixels(width, height, maxPixels, name);
    if (frameWidth === 0 || frameHeight === 0) throw new InputError(`${name}: GIF frame has zero size`);
    const minCodeSize = r.u8();
    const indices = new Uint8Array(width * height).fill(transparency ?? 0);
    const rows = rowOrder(frameHeight, (flags & 0x40) !== 0);
    decodeLzw(r.imageBlocks(), minCodeSize, frameWidth * frameHeight, (k, index) => {
      const row = rows[Math.floor(k / frameWidth)];
      indices[(y0 + row) * width + x0 + (k % frameWidth)] = index;
    }, name);
    return { width, height, data: applyPalette(indices, palette) };
  }
}

function applyPalette(indices: Uint8Array, palette: Uint8Array | undefined): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.fill(i, i * 3, i * 3 + 3);
  if (palette) lut.set(palette.subarray(0, lut.length));
  const data = new Uint8Array(indices.length * 3);
  for (let i = 0; i < indices.length; i++) data.set(lut.subarray(indices[i] * 3, indices[i] * 3 + 3), i * 3);
  return data;
}
