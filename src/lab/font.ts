/**
 * Text rendered in the DejaVu Sans that ships in assets/fonts, through sharp (libvips → Pango → FreeType). Only the
 * shipped file is used: fontconfig is pointed at assets/fonts/fonts.conf, which lists no font directory and turns
 * hinting off, so that the pixels are the same on a machine with other fonts, or none.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const FONT_DIR = fileURLToPath(new URL('../../../assets/fonts/', import.meta.url));
export const FONT_FILE = join(FONT_DIR, 'DejaVuSans.ttf');
const FONT_CONFIG = join(FONT_DIR, 'fonts.conf');
const FONT_FAMILY = 'DejaVu Sans';

/**
 * DejaVu Sans 2.37's cap height: 'H' spans y 0..1493 of the 2048 units per em (its glyf entry; the font's OS/2
 * table is version 1, which has no sCapHeight). Digits are as tall; O, 0 and the like overshoot by a few per cent.
 */
export const CAP_HEIGHT_EM = 1493 / 2048;

/** A coverage mask: 0 where the text is not, 255 where it covers the pixel. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Pango markup's special characters, escaped (sharp's text is Pango markup). */
function escapeMarkup(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * fontconfig reads FONTCONFIG_FILE once, when libvips first renders text in this process; egret renders text
 * nowhere else, so setting it here, before the first rendering, decides which configuration is used.
 */
function useShippedFontConfig(): void {
  process.env['FONTCONFIG_FILE'] = FONT_CONFIG;
}

/**
 * `text` on one line at a font size of `emPx` pixels per em, cropped to its ink (libvips crops the rendering to the
 * glyphs' ink extents).
 */
export async function renderText(text: string, emPx: number): Promise<Mask> {
  useShippedFontConfig();
  const { data, info } = await sharp({ text: { text: escapeMarkup(text), font: `${FONT_FAMILY} ${emPx.toFixed(3)}px`, fontfile: FONT_FILE, dpi: 72 } })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The font size whose capital letters are `capHeightPx` pixels tall. */
export function emForCapHeight(capHeightPx: number): number {
  return capHeightPx / CAP_HEIGHT_EM;
}
